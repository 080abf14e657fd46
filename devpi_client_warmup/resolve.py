"""Per target: let pip resolve for that target and collect the files it chose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Protocol

from packaging.utils import canonicalize_name, parse_wheel_filename
from requests import RequestException

from . import sdist
from .errors import InputError
from .fetch import TIMEOUT, FetchError
from .matrix import Target
from .sources import Inputs

_MAX_BUILD_ROUNDS = 5


@dataclass(frozen=True)
class Pick:
    """A file pip chose for a target."""

    name: str
    version: str
    url: str  # devpi URL, without credentials
    sha256: str | None
    role: str = "install"  # or "build": needed to build an sdist on the target
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # pip's JSON form

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def is_sdist(self) -> bool:
        return not self.filename.endswith(".whl")


@dataclass
class Resolution:
    """What one target needs, or why pip could not tell."""

    target: Target
    picks: list[Pick] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class PipRun:
    """How to reach the index from pip: the gateway URL, the netrc that opens it, the way back."""

    index_url: str
    netrc: Path
    devpi_url: Callable[[str], str]


class Files(Protocol):
    """The run's access to index files (see fetch.Store)."""

    def sdist_info(self, url: str) -> sdist.Sdist: ...

    def cached(self, url: str, kind: str) -> bytes | None: ...

    def remember(self, url: str, kind: str, data: bytes) -> None: ...

    def filenames(self, project: str, version: str) -> list[str]: ...


def resolve_target(target: Target, inputs: Inputs, pip: PipRun, workdir: Path, files: Files) -> Resolution:
    """Everything ``target`` needs: the requirements, and what builds each sdist among them."""
    return add_builds(resolve(target, inputs, pip, workdir), pip, workdir, files)


def add_builds(resolution: Resolution, pip: PipRun, workdir: Path, files: Files) -> Resolution:
    """Add what builds each sdist of ``resolution`` on its target: the build requirements, resolved there."""
    target = resolution.target
    queue = [pick for pick in resolution.picks if pick.is_sdist]
    done: set[tuple[str, ...]] = set()
    while queue and not resolution.error:
        pick = queue.pop(0)
        if pick.metadata and files.cached(pick.url, "metadata") is None:  # pip built it: serve it next time
            files.remember(pick.url, "metadata", sdist.metadata_file(pick.metadata))
        try:
            info = files.sdist_info(pick.url)
        except (OSError, ValueError, tarfile.TarError, zipfile.BadZipFile, FetchError, RequestException) as exc:
            resolution.error = f"cannot read {pick.filename}: {exc}"
            break
        resolution.notes.append(
            f"{pick.name} {pick.version}: no wheel fits; warmed the sdist and its build"
            f" requirements ({', '.join(info.build_requires)}); its dependencies come from {info.metadata_source}"
        )
        if _is_compiled(files.filenames(pick.name, pick.version)):
            resolution.warnings.append(
                f"{pick.name} {pick.version} is a compiled package with no wheel for {target.name}:"
                " installing it there compiles the sdist (a compiler and headers are needed on the target)"
            )
        if info.build_requires in done or len(done) >= _MAX_BUILD_ROUNDS:
            continue
        done.add(info.build_requires)
        build_inputs = Inputs()
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
        new = [replace(p, role="build") for p in build.picks if p.url not in known]
        resolution.picks += new
        queue += [p for p in new if p.is_sdist]
    return resolution


def _is_compiled(filenames: list[str]) -> bool:
    """Does the release ship platform-specific wheels (for other targets)?"""
    wheels = [parse_wheel_filename(name)[3] for name in filenames if name.endswith(".whl")]
    return any(tag.platform != "any" for tags in wheels for tag in tags)


def resolve(target: Target, inputs: Inputs, pip: PipRun, workdir: Path) -> Resolution:
    """Run ``pip install --dry-run --report`` for ``target`` and read the files it chose."""
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    requirements = workdir / "requirements.txt"
    requirements.write_text("".join(line.pip_line() + "\n" for line in inputs.requirements))
    report = workdir / "report.json"
    command = [
        sys.executable, "-m", "devpi_client_warmup._pip", "install",
        "--dry-run", "--ignore-installed", "--quiet", "--no-input", "--no-cache-dir",
        "--disable-pip-version-check", "--timeout", str(TIMEOUT + 20), "--report", str(report),
        "--index-url", pip.index_url, *target.pip_options, "-r", str(requirements),
    ]  # fmt: skip
    if inputs.constraints:
        constraints = workdir / "constraints.txt"
        constraints.write_text("".join(line.pip_line() + "\n" for line in inputs.constraints))
        command += ["-c", str(constraints)]
    if inputs.pre:
        command.append("--pre")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,  # only the devpi index: no pip.conf index or find-links
        NETRC=str(pip.netrc),
        DEVPI_WARMUP_MARKERS=json.dumps(target.marker_environment),
    )
    process = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    resolution = Resolution(target, seconds=time.monotonic() - started)
    if process.returncode != 0:
        resolution.error = _pip_error(process.stderr) or f"pip exited with {process.returncode}"
        return resolution
    for item in json.loads(report.read_text())["install"]:
        info = item["download_info"]
        hashes = info.get("archive_info", {}).get("hashes", {})
        metadata = item["metadata"]
        name = canonicalize_name(metadata["name"])
        url = pip.devpi_url(info["url"])
        resolution.picks.append(Pick(name, metadata["version"], url, hashes.get("sha256"), metadata=metadata))
    return resolution


def _pip_error(stderr: str) -> str:
    """pip's error, in as few lines as it takes."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    return "; ".join(errors or lines[-3:])
