"""A lock's files for a target, without resolving: for each locked release whose markers hold
there, the file pip on the target would take (the best wheel by the target's tag ranking, else
the sdist). A hash the lock records for that file must equal the index's."""

from __future__ import annotations

from typing import Any, Protocol

from packaging.markers import Marker
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version
from requests import RequestException

from ..errors import FetchError
from ..index.listing import Listed
from ..inputs.lock import Lock, Locked
from ..matrix import Target
from .resolution import Pick, Resolution, ResolvedBy


class Pages(Protocol):
    """The index's project pages (see index.pages.ProjectPages)."""

    def project_files(self, project: str) -> list[Listed] | None: ...


def select(target: Target, lock: Lock, pages: Pages) -> Resolution:
    """The file of every locked release that ``target`` installs; problems name what is missing."""
    resolution = Resolution(target, resolved_by=ResolvedBy.LOCK)
    environment = target.marker_environment
    python = target.python.full_version
    if lock.requires_python and not lock.requires_python.contains(python, prereleases=True):
        resolution.error = f"{lock.path} requires Python {lock.requires_python}"
        return resolution
    ranking = {tag: rank for rank, tag in enumerate(target.tags)}
    reachable = lock.graph.reachable(environment) if lock.graph is not None else None
    problems = []
    for locked in lock.packages:
        if locked.marker is not None and not _applies(locked.marker, environment):
            continue
        if reachable is not None and (locked.name, locked.version) not in reachable:
            continue
        if locked.requires_python and not locked.requires_python.contains(python, prereleases=True):
            problems.append(f"{locked.name} {locked.version} requires Python {locked.requires_python}")
            continue
        try:
            files = pages.project_files(locked.name)
        except (FetchError, RequestException, ValueError) as exc:
            problems.append(f"{locked.name}: cannot read its index page: {exc}")
            continue
        if files is None:
            problems.append(f"{locked.name}: not on the index")
            continue
        chosen = _best_file(files, locked, ranking)
        if chosen is None:
            problems.append(f"{locked.name} {locked.version}: no file on the index fits {target.name}")
            continue
        mismatch = _hash_mismatch(chosen, locked)
        if mismatch:
            problems.append(mismatch)
            continue
        resolution.picks.append(Pick(locked.name, locked.version, chosen.url, chosen.sha256))
    if problems:
        resolution.error = "; ".join(problems)
    return resolution


def _applies(marker: Marker, environment: dict[str, str]) -> bool:
    """Evaluate a lock's marker (PEP 751 markers may test ``extras`` and ``dependency_groups``)."""
    lock_env: dict[str, Any] = {**environment, "extras": frozenset(), "dependency_groups": frozenset()}
    return marker.evaluate(lock_env, context="lock_file")


def _best_file(files: list[Listed], locked: Locked, ranking: dict[Any, int]) -> Listed | None:
    """The wheel pip on the target prefers (its best-ranked tag), else the sdist."""
    version = Version(locked.version)
    best: tuple[int, Listed] | None = None
    sdist = None
    for file in files:
        if file.filename.endswith(".whl"):
            try:
                _, file_version, _, tags = parse_wheel_filename(file.filename)
            except InvalidWheelFilename:
                continue
            rank = min((ranking[tag] for tag in tags if tag in ranking), default=None)
            if file_version == version and rank is not None and (best is None or rank < best[0]):
                best = (rank, file)
        elif _sdist_release(file.filename) == (locked.name, version):
            sdist = file
    return best[1] if best else sdist


def _sdist_release(filename: str) -> tuple[str, Version] | None:
    try:
        return parse_sdist_filename(filename)
    except InvalidSdistFilename:
        return None


def _hash_mismatch(file: Listed, locked: Locked) -> str | None:
    expected = locked.hashes.get(file.filename)
    if expected and file.sha256 and expected != file.sha256:
        return f"{file.filename}: the lock says sha256 {expected}, the index says {file.sha256}"
    if locked.any_hashes and file.sha256 not in locked.any_hashes:
        return (
            f"{file.filename}: sha256 {file.sha256} on the index is none of the --hash values pinned for it"
        )
    return None
