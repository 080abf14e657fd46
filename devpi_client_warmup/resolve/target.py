"""Per target: pip's answer for the requirements (or the one remembered while the index is
unchanged), the releases older than the newest and why, and what builds each sdist."""

from __future__ import annotations

import functools
import importlib.metadata
import json
import tarfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from packaging.utils import parse_wheel_filename
from packaging.version import Version
from requests import RequestException

from .. import __version__
from ..errors import FetchError, InputError
from ..index import sdist
from ..index.cache import Kind, key_of
from ..inputs.requirements import Inputs
from ..matrix import Target
from .pip import PipRun, run_pip
from .resolution import Older, Pick, Resolution, ResolvedBy, Role

_PAGE_READERS = 8  # index pages read at once (waiting on devpi, not on the CPU)


class Files(Protocol):
    """The index's files as the run knows them (see index.files.Files)."""

    def knows(self, url: str, kind: Kind) -> bool: ...

    def remember(self, url: str, kind: Kind, data: bytes) -> None: ...

    def filenames(self, project: str, version: str) -> list[str]: ...

    def versions(self, project: str) -> list[str]: ...


class Sdists(Protocol):
    """What is known about the index's sdists (see index.sdist.SdistFacts)."""

    def build_info(self, url: str) -> sdist.Sdist: ...

    def metadata_source(self, url: str) -> sdist.MetadataSource | None: ...


def resolve_target(
    target: Target, inputs: Inputs, pip: PipRun, workdir: Path, files: Files, sdists: Sdists
) -> Resolution:
    """Everything ``target`` needs: the requirements, and what builds each sdist among them."""
    resolution = resolve(target, inputs, pip, workdir)
    resolution.older = older_releases(resolution, inputs, files)
    return add_builds(resolution, inputs, pip, workdir, files, sdists)


_version = functools.lru_cache(maxsize=None)(Version)  # a project page lists each version many times


def older_releases(resolution: Resolution, policy: Inputs, files: Files) -> list[Older]:
    """The picks older than their project's newest release on the index, each with the reason."""
    accepted = set(resolution.target.tags)
    older = []
    for pick in resolution.picks:
        versions = [v for v in files.versions(pick.name) if policy.pre or not _version(v).is_prerelease]
        newest = max(map(_version, versions), default=None)
        if newest is None or newest <= Version(pick.version):
            continue
        names = [name for v in versions if _version(v) == newest for name in files.filenames(pick.name, v)]
        wheels = [name for name in names if name.endswith(".whl")]
        if any(tag in accepted for name in wheels for tag in parse_wheel_filename(name)[3]):
            reason = "excluded by a requirement, a constraint or its Requires-Python"
        elif len(wheels) < len(names) and not policy.prefer_newest:
            reason = f"{newest} has no wheel for {resolution.target.name}, only an sdist (wheels first)"
        else:
            reason = f"{newest} has no file for {resolution.target.name}"
        older.append(Older(pick.name, pick.version, str(newest), reason))
    return older


def add_builds(
    resolution: Resolution, policy: Inputs, pip: PipRun, workdir: Path, files: Files, sdists: Sdists
) -> Resolution:
    """Add what builds each sdist of ``resolution`` on its target: the build requirements, resolved
    there with the selection ``policy`` (pre-releases, wheels or sdists) of the requirements."""
    target = resolution.target
    queue = [pick for pick in resolution.picks if pick.is_sdist]
    done: set[tuple[str, ...]] = set()
    while queue and not resolution.error:
        pick = queue.pop(0)
        if pick.metadata and not files.knows(pick.url, Kind.METADATA):  # pip built it: serve it next time
            files.remember(pick.url, Kind.METADATA, sdist.metadata_file(pick.metadata))
        try:
            info = sdists.build_info(pick.url)
        except (
            OSError,
            ValueError,
            tarfile.TarError,
            zipfile.BadZipFile,
            FetchError,
            RequestException,
        ) as exc:
            resolution.error = f"cannot read {pick.filename}: {exc}"
            break
        source = sdists.metadata_source(pick.url) or sdist.MetadataSource.BUILT
        resolution.notes.append(
            f"{pick.name} {pick.version}: warmed the sdist and its build requirements"
            f" ({', '.join(info.build_requires)}); its dependencies come from {source.value}"
        )
        if _is_compiled(files.filenames(pick.name, pick.version)):
            needs = ", ".join(sdist.toolchains(info.build_requires)) or "a compiler and headers"
            resolution.warnings.append(
                f"{pick.name} {pick.version} is a compiled package with no wheel for {target.name}:"
                f" installing it there compiles the sdist (the target needs {needs})"
            )
        if info.build_requires in done:  # each set once; every new sdist adds work, so this ends
            continue
        done.add(info.build_requires)
        build_inputs = Inputs(pre=policy.pre, formats=policy.formats, prefer_newest=policy.prefer_newest)
        try:
            build_inputs.add_packages(info.build_requires, f"{pick.filename} [build-system] requires")
        except InputError as exc:
            resolution.error = str(exc)
            break
        build = resolve(target, build_inputs, pip, workdir / f"build-{len(done)}")
        if build.error:
            resolution.error = f"cannot resolve what builds {pick.filename}: {build.error}"
            break
        known = {known.url for known in resolution.picks}
        new = [replace(p, role=Role.BUILD) for p in build.picks if p.url not in known]
        resolution.picks += new
        queue += [p for p in new if p.is_sdist]
    return resolution


def _is_compiled(filenames: list[str]) -> bool:
    """Does the release ship platform-specific wheels (for other targets)?"""
    wheels = [parse_wheel_filename(name)[3] for name in filenames if name.endswith(".whl")]
    return any(tag.platform != "any" for tags in wheels for tag in tags)


def resolve(target: Target, inputs: Inputs, pip: PipRun, workdir: Path) -> Resolution:
    """The files pip chooses for ``target``: remembered from an earlier run while every index
    page that run read is unchanged, else from ``pip install --dry-run --report``."""
    started = time.monotonic()
    key = _memo_key(target, inputs, pip)
    remembered = _recall(target, pip, key)
    if remembered is not None:
        remembered.seconds = time.monotonic() - started
        return remembered
    resolution = run_pip(target, inputs, pip, workdir, tag=key[:16])
    resolution.seconds = time.monotonic() - started
    if resolution.error is None:
        pages = {path: pip.index.page_digest(path) for path in pip.index.pages_read_by(key[:16])}
        picks = [
            {"name": p.name, "version": p.version, "url": p.url, "sha256": p.sha256} for p in resolution.picks
        ]
        pip.memo.put(Kind.RESOLUTION, key, json.dumps({"pages": pages, "picks": picks}).encode())
    return resolution


def _memo_key(target: Target, inputs: Inputs, pip: PipRun) -> str:
    """Everything a resolution depends on but the index pages."""
    what = {
        "tool": __version__,
        "pip": importlib.metadata.version("pip"),
        "index": pip.index.simple_url,
        "target": target.pip_options,
        "markers": target.marker_environment,
        "requirements": [line.pip_line() for line in inputs.requirements],
        "constraints": [line.pip_line() for line in inputs.constraints],
        "pre": inputs.pre,
        "selection": inputs.pip_options(),
    }
    return key_of(what)


def _recall(target: Target, pip: PipRun, key: str) -> Resolution | None:
    kept = pip.memo.get(Kind.RESOLUTION, key)
    if kept is None:
        return None
    try:
        value = json.loads(kept)
        pages: dict[str, str] = dict(value["pages"])
        picks = [Pick(**pick) for pick in value["picks"]]
    except (ValueError, KeyError, TypeError):
        return None  # a damaged entry is a miss
    with ThreadPoolExecutor(_PAGE_READERS) as pool:
        digests = list(pool.map(pip.index.page_digest, pages))
    if digests != list(pages.values()):
        return None  # the index changed: pip may choose differently now
    return Resolution(target, picks=picks, resolved_by=ResolvedBy.MEMO)
