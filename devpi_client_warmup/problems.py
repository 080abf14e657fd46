"""What went wrong for a target, as values: a target's status and the command's exit code are
derived from its problems here, and only here."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class ProblemKind(enum.Enum):
    UNKNOWN_PACKAGE = "unknown package"  # a requirement the index has no project for: bad input
    UNRESOLVED = "unresolved"  # pip (or the lock) could not tell which files the target needs
    NOT_FETCHED = "not fetched"  # a file the target needs could not be fetched intact
    MISSING = "missing"  # --check: devpi does not store a file the target needs


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    target: str  # the target's name
    message: str  # one readable sentence, credentials redacted
    file: str | None = None  # the file it is about, if any


class Status(str, enum.Enum):
    """How a target ended."""

    OK = "ok"  # every file it needs is stored by devpi (now)
    COMPLETE = "complete"  # --check: devpi stores every file it needs
    MISSING = "missing"  # --check: devpi lacks some of its files
    INCOMPLETE = "incomplete"  # resolved, but some files could not be fetched
    FAILED = "failed"  # it could not be resolved


class ExitCode(enum.IntEnum):
    OK = 0
    INCOMPLETE = 1  # a target failed, or (--check) devpi lacks files
    BAD_INPUT = 2
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM


def target_status(problems: Iterable[Problem], *, checked: bool) -> Status:
    """A target's status from its problems (``checked``: a --check run)."""
    kinds = {problem.kind for problem in problems}
    if ProblemKind.MISSING in kinds:
        return Status.MISSING
    if kinds & {ProblemKind.UNKNOWN_PACKAGE, ProblemKind.UNRESOLVED}:
        return Status.FAILED
    if kinds:
        return Status.INCOMPLETE
    return Status.COMPLETE if checked else Status.OK


def exit_code(problems: Iterable[Problem]) -> ExitCode:
    """The command's exit code from every target's problems."""
    kinds = {problem.kind for problem in problems}
    if ProblemKind.UNKNOWN_PACKAGE in kinds:
        return ExitCode.BAD_INPUT
    return ExitCode.INCOMPLETE if kinds else ExitCode.OK
