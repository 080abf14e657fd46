"""Errors the command turns into one-line messages."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""


class FetchError(Exception):
    """A file could not be fetched intact, or not from devpi."""


class BuildFailed(Exception):
    """Building an sdist's metadata on this machine failed; the message says why."""
