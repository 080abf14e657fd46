"""What resolution finds for a target: the files it picks, the older releases it takes, why it failed."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ..matrix import Target


class Role(enum.Enum):
    """Why a target needs a file."""

    INSTALL = "install"  # a requirement, or one of their dependencies
    BUILD = "build"  # to build an sdist on the target


class ResolvedBy(enum.Enum):
    """Where a target's files came from."""

    PIP = "pip"  # pip resolved the requirements in this run
    MEMO = "memo"  # pip's answer of an earlier run, every page it read unchanged
    LOCK = "lock"  # the lock's files for the target, without resolving


@dataclass(frozen=True)
class Pick:
    """A file pip chose for a target."""

    name: str
    version: str
    url: str  # devpi URL, without credentials
    sha256: str | None
    role: Role = Role.INSTALL
    # pip's JSON form of an sdist's metadata (pip may have built it); a wheel's is not kept
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def is_sdist(self) -> bool:
        return not self.filename.endswith(".whl")


@dataclass(frozen=True)
class Older:
    """A requirement the target gets in an older release than the newest on the index, and why."""

    project: str
    version: str
    newest: str
    reason: str

    def __str__(self) -> str:
        return f"{self.project} {self.version}, not the newest {self.newest}: {self.reason}"


@dataclass
class Resolution:
    """What one target needs, or why pip could not tell."""

    target: Target
    picks: list[Pick] = field(default_factory=list)
    older: list[Older] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    pip_output: str = field(default="", repr=False)  # what pip printed, when it failed
    unknown_project: str | None = None  # the error is a requirement the index does not have
    resolved_by: ResolvedBy = ResolvedBy.PIP
    seconds: float = 0.0
