"""Pinned inputs: pylock.toml (PEP 751), uv.lock and fully hash-pinned requirements.

A lock already says which release of every package to install. For each target this
module takes the locked packages whose markers hold there and picks, from the devpi
index's project pages, the file of the locked release that pip on the target would take
(the best wheel by the target's tag ranking, else the sdist) — no resolution. A hash the
lock records for that file must equal the index's.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from packaging.markers import InvalidMarker, Marker
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version
from requests import RequestException

from ._compat import tomllib
from .errors import FetchError, InputError
from .fetch import IndexFile
from .matrix import Target
from .resolve import Pick, Resolution
from .sources import Inputs

_PYLOCK_RE = re.compile(r"^pylock\.([^.]+\.)?toml$")


@dataclass(frozen=True)
class Locked:
    """One locked release: name, version, when it applies, and the sha256 of its files."""

    name: str
    version: str
    marker: Marker | None = None
    requires_python: SpecifierSet | None = None
    hashes: dict[str, str] = field(default_factory=dict)  # filename -> sha256 (pylock, uv.lock)
    any_hashes: frozenset[str] = frozenset()  # sha256s of any file (requirements --hash)


@dataclass(frozen=True)
class Lock:
    path: str
    packages: tuple[Locked, ...]
    requires_python: SpecifierSet | None = None
    graph: UvGraph | None = field(default=None, compare=False, repr=False)  # uv.lock: edges with markers


@dataclass(frozen=True)
class UvGraph:
    """uv.lock's dependency edges from the workspace members, markers on the edges: walked once
    per target (linear in the lock's size), not enumerated as paths."""

    by_name: dict[str, list[dict[str, Any]]]
    roots: tuple[dict[str, Any], ...]

    def reachable(self, environment: dict[str, str] | None) -> set[tuple[str, str]]:
        """(name, version) of every registry package reachable on ``environment`` (None: any)."""
        found: set[tuple[str, str]] = set()
        seen: set[tuple[str, str, tuple[str, ...]]] = set()
        queue: list[tuple[dict[str, Any], tuple[str, ...]]] = [(root, ()) for root in self.roots]
        while queue:
            package, extras = queue.pop()
            key = (canonicalize_name(package["name"]), str(package.get("version", "")))
            if (*key, extras) in seen:
                continue
            seen.add((*key, extras))
            if "registry" in package.get("source", {}):
                found.add(key)
            edges = list(package.get("dependencies", []))
            for extra in extras:
                edges += package.get("optional-dependencies", {}).get(extra, [])
            for edge in edges:
                marker = edge.get("marker")
                if marker and environment is not None and not _edge_applies(marker, environment):
                    continue
                candidates = self.by_name.get(canonicalize_name(edge["name"]), [])
                if "version" in edge:
                    candidates = [c for c in candidates if c.get("version") == edge["version"]]
                queue += [(candidate, tuple(sorted(edge.get("extra", [])))) for candidate in candidates]
        return found


@functools.cache
def _marker(text: str) -> Marker:
    return Marker(text)


def _edge_applies(text: str, environment: dict[str, str]) -> bool:
    return _marker(text).evaluate({**environment, "extra": ""})


class Pages(Protocol):
    """The index's project pages (see fetch.Store.project_files)."""

    def project_files(self, project: str) -> list[IndexFile] | None: ...


def is_lock_file(path: Path) -> bool:
    return path.name == "uv.lock" or bool(_PYLOCK_RE.match(path.name))


def load(path: Path) -> Lock:
    """Read a pylock.toml or uv.lock."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"lock file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read lock file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from None
    try:
        if path.name == "uv.lock":
            return _uv_lock(str(path), document)
        return _pylock(str(path), document)
    except (KeyError, TypeError, AttributeError, InvalidMarker, InvalidSpecifier, InvalidVersion) as exc:
        raise InputError(
            f"{path}: not a lock file this tool understands ({type(exc).__name__}: {exc})"
        ) from None


def from_pinned_requirements(inputs: Inputs) -> Lock | None:
    """A lock, if every requirement is ``name==version`` with ``--hash`` and nothing else is asked."""
    if not inputs.requirements or inputs.constraints:
        return None
    packages = []
    for line in inputs.requirements:
        specifiers = list(line.requirement.specifier)
        if (
            len(specifiers) != 1
            or specifiers[0].operator not in ("==", "===")
            or "*" in specifiers[0].version
        ):
            return None
        if not line.hashes or line.requirement.extras:
            return None
        hashes = frozenset(h.split(":", 1)[1] for h in line.hashes if h.startswith("sha256:"))
        name = canonicalize_name(line.requirement.name)
        packages.append(Locked(name, specifiers[0].version, line.requirement.marker, any_hashes=hashes))
    return Lock("hash-pinned requirements", tuple(packages))


def _pylock(path: str, document: dict[str, Any]) -> Lock:
    if "lock-version" not in document:
        raise InputError(f"{path}: no lock-version: not a PEP 751 pylock.toml")
    packages = []
    for package in document.get("packages", []):
        if "version" not in package:
            raise InputError(
                f"{path}: {package['name']} has no version (VCS/directory packages cannot be warmed)"
            )
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        hashes = {
            f.get("name") or f["url"].rsplit("/", 1)[-1]: f["hashes"]["sha256"]
            for f in files
            if "sha256" in f.get("hashes", {})
        }
        packages.append(
            Locked(
                canonicalize_name(package["name"]),
                package["version"],
                Marker(package["marker"]) if package.get("marker") else None,
                SpecifierSet(package["requires-python"]) if package.get("requires-python") else None,
                hashes,
            )
        )
    requires_python = document.get("requires-python")
    return Lock(path, tuple(packages), SpecifierSet(requires_python) if requires_python else None)


def _uv_lock(path: str, document: dict[str, Any]) -> Lock:
    """uv.lock: the packages reachable from the workspace members; which of them a target takes
    is decided per target by walking the edges with its markers (``UvGraph``)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in document.get("package", []):
        by_name.setdefault(canonicalize_name(package["name"]), []).append(package)
    roots = [p for ps in by_name.values() for p in ps if set(p.get("source", {})) & {"editable", "virtual"}]
    graph = UvGraph(by_name, tuple(roots))
    for package in (p for ps in by_name.values() for p in ps):  # markers must parse: bad input
        optional = package.get("optional-dependencies", {}).values()
        for edge in [*package.get("dependencies", []), *(edge for edges in optional for edge in edges)]:
            if edge.get("marker"):
                _marker(edge["marker"])
    packages = [
        Locked(name, version, None, None, _uv_hashes(package))
        for name, version in sorted(graph.reachable(None))
        for package in by_name[name]
        if str(package.get("version", "")) == version and "registry" in package.get("source", {})
    ]
    requires_python = document.get("requires-python")
    return Lock(path, tuple(packages), SpecifierSet(requires_python) if requires_python else None, graph)


def _uv_hashes(package: dict[str, Any]) -> dict[str, str]:
    files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
    return {
        f["url"].rsplit("/", 1)[-1]: f["hash"].split(":", 1)[1]
        for f in files
        if "url" in f and str(f.get("hash", "")).startswith("sha256:")
    }


def select(target: Target, lock: Lock, pages: Pages) -> Resolution:
    """The file of every locked release that ``target`` installs; problems name what is missing."""
    resolution = Resolution(target, resolved_by="lock")
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


def _best_file(files: list[IndexFile], locked: Locked, ranking: dict[Any, int]) -> IndexFile | None:
    """The wheel pip on the target prefers (its best-ranked tag), else the sdist."""
    version = Version(locked.version)
    best: tuple[int, IndexFile] | None = None
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


def _hash_mismatch(file: IndexFile, locked: Locked) -> str | None:
    expected = locked.hashes.get(file.filename)
    if expected and file.sha256 and expected != file.sha256:
        return f"{file.filename}: the lock says sha256 {expected}, the index says {file.sha256}"
    if locked.any_hashes and file.sha256 not in locked.any_hashes:
        return (
            f"{file.filename}: sha256 {file.sha256} on the index is none of the --hash values pinned for it"
        )
    return None
