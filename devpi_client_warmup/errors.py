"""Errors the command turns into one-line messages."""

from __future__ import annotations


class InputError(Exception):
    """Bad input from the user: reported in one line, exit code 2."""
