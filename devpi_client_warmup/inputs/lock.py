"""Pinned inputs: pylock.toml (PEP 751), uv.lock and fully hash-pinned requirements.

A lock already says which release of every package to install; ``resolve.locked`` picks each
target's files from it without resolving.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from packaging.markers import InvalidMarker, Marker
from packaging.pylock import (
    PackageSdist,
    PackageWheel,
    Pylock,
    PylockUnsupportedVersionError,
    PylockValidationError,
    is_valid_pylock_path,
)
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    canonicalize_name,
)
from packaging.version import InvalidVersion

from .._compat import tomllib
from ..errors import InputError
from .requirements import Inputs


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


def is_lock_file(path: Path) -> bool:
    return path.name == "uv.lock" or is_valid_pylock_path(path)


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
    """A PEP 751 lock, read and validated by ``packaging.pylock``."""
    try:
        pylock = Pylock.from_dict(document)
    except (PylockValidationError, PylockUnsupportedVersionError) as exc:
        raise InputError(f"{path}: not a valid PEP 751 lock: {exc}") from None
    packages = []
    for package in pylock.packages:
        if package.version is None:
            raise InputError(
                f"{path}: {package.name} has no version (VCS/directory packages cannot be warmed)"
            )
        files: list[PackageWheel | PackageSdist] = [
            *(package.wheels or ()),
            *([package.sdist] if package.sdist else []),
        ]
        hashes = {
            file.name or _filename(file.url or file.path or ""): file.hashes["sha256"]
            for file in files
            if "sha256" in file.hashes
        }
        packages.append(
            Locked(
                canonicalize_name(package.name),
                str(package.version),
                package.marker,
                package.requires_python,
                hashes,
            )
        )
    return Lock(path, tuple(packages), pylock.requires_python)


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
        _filename(f["url"]): f["hash"].split(":", 1)[1]
        for f in files
        if "url" in f and str(f.get("hash", "")).startswith("sha256:")
    }


def _filename(url: str) -> str:
    """A file's name as its URL gives it, unquoted (``torch-2.1.0%2Bcpu-...`` is ``torch-2.1.0+cpu-...``),
    as the index pages name the files the lock's hashes are checked against."""
    return unquote(url.rsplit("/", 1)[-1])
