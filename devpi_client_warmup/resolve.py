"""Per target: let pip resolve for that target and collect the files it chose."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version
from requests import RequestException

from . import __version__, sdist
from .cache import Kind
from .errors import BuildFailed, FetchError, InputError
from .matrix import Target
from .sources import Inputs

# All that pip and the build backends it may start get from this process's environment: no
# credentials (DEVPI_INDEX may hold a password), no PIP_* settings, and no proxies (pip talks
# only to the gateway on 127.0.0.1; the gateway reaches devpi with the user's proxy settings).
_PIP_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT")
_PAGE_READERS = 8  # index pages read at once (waiting on devpi, not on the CPU)
# pip's socket timeout: the gateway bounds every wait on devpi (fetch.TIMEOUT), but an answer
# may also wait for an sdist's metadata build here, which can take many minutes
PIP_TIMEOUT = 3600


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
    resolved_by: str = "pip"  # or "memo" (pip's earlier answer, the index unchanged) or "lock"
    seconds: float = 0.0


@dataclass(frozen=True)
class PipRun:
    """What a pip run needs: the gateway in front of the index, the netrc that opens it, a memo,
    and the register of running pip processes."""

    index: Index
    netrc: Path
    memo: Memo
    children: Children = field(default_factory=lambda: Children())


class Children:
    """The pip processes of a run, so that an interrupt stops them (and starts no more)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[str]] = set()
        self.stopped = False

    def run(self, command: list[str], env: dict[str, str]) -> tuple[int, str]:
        """Run ``command``; its exit code and output."""
        with self._lock:
            if self.stopped:
                return -signal.SIGTERM, "interrupted"
            process = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
            self._running.add(process)
        try:
            output, _ = process.communicate()
        finally:
            with self._lock:
                self._running.discard(process)
        return process.returncode, output

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
            for process in self._running:
                process.terminate()


class Index(Protocol):
    """The index as pip sees it (see gateway.Gateway)."""

    @property
    def simple_url(self) -> str: ...

    def index_url_for(self, tag: str, target: Target) -> str: ...

    def devpi_url(self, url: str) -> str: ...

    def pages_read_by(self, tag: str) -> set[str]: ...

    def page_digest(self, path: str) -> str: ...

    def unknown_for(self, tag: str) -> list[str]: ...


class Memo(Protocol):
    """Facts kept across runs (see fetch.Store)."""

    def recall(self, kind: Kind, key: str) -> bytes | None: ...

    def keep(self, kind: Kind, key: str, data: bytes) -> None: ...


class Files(Protocol):
    """The run's access to index files (see fetch.Store)."""

    def sdist_info(self, url: str) -> sdist.Sdist: ...

    def knows(self, url: str, kind: Kind) -> bool: ...

    def remember(self, url: str, kind: Kind, data: bytes) -> None: ...

    def filenames(self, project: str, version: str) -> list[str]: ...

    def metadata_source(self, url: str) -> sdist.MetadataSource | None: ...

    def project_releases(self, project: str) -> list[tuple[str, str]]: ...


def resolve_target(target: Target, inputs: Inputs, pip: PipRun, workdir: Path, files: Files) -> Resolution:
    """Everything ``target`` needs: the requirements, and what builds each sdist among them."""
    resolution = resolve(target, inputs, pip, workdir)
    resolution.older = older_releases(resolution, inputs, files)
    return add_builds(resolution, inputs, pip, workdir, files)


_version = functools.lru_cache(maxsize=None)(Version)  # a project page lists each version many times


def older_releases(resolution: Resolution, policy: Inputs, files: Files) -> list[Older]:
    """The picks older than their project's newest release on the index, each with the reason."""
    accepted = set(resolution.target.tags)
    older = []
    for pick in resolution.picks:
        releases: dict[Version, list[str]] = {}
        for url, version in files.project_releases(pick.name):
            parsed = _version(version)
            if policy.pre or not parsed.is_prerelease:
                releases.setdefault(parsed, []).append(url.rsplit("/", 1)[-1])
        newest = max(releases, default=None)
        if newest is None or newest <= Version(pick.version):
            continue
        names = releases[newest]
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
    resolution: Resolution, policy: Inputs, pip: PipRun, workdir: Path, files: Files
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
            info = files.sdist_info(pick.url)
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
        source = files.metadata_source(pick.url) or sdist.MetadataSource.BUILT
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
        new = [replace(p, role="build") for p in build.picks if p.url not in known]
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
    resolution = _run_pip(target, inputs, pip, workdir, tag=key[:16])
    resolution.seconds = time.monotonic() - started
    if resolution.error is None:
        pages = {path: pip.index.page_digest(path) for path in pip.index.pages_read_by(key[:16])}
        picks = [
            {"name": p.name, "version": p.version, "url": p.url, "sha256": p.sha256} for p in resolution.picks
        ]
        pip.memo.keep(Kind.RESOLUTION, key, json.dumps({"pages": pages, "picks": picks}).encode())
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
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()


def _recall(target: Target, pip: PipRun, key: str) -> Resolution | None:
    kept = pip.memo.recall(Kind.RESOLUTION, key)
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
    return Resolution(target, picks=picks, resolved_by="memo")


def _run_pip(target: Target, inputs: Inputs, pip: PipRun, workdir: Path, tag: str) -> Resolution:
    """Run ``pip install --dry-run --report`` for ``target`` and read the files it chose."""
    workdir.mkdir(parents=True, exist_ok=True)
    requirements = workdir / "requirements.txt"
    requirements.write_text("".join(line.pip_line() + "\n" for line in inputs.requirements))
    report = workdir / "report.json"
    command = [
        sys.executable, "-m", "devpi_client_warmup._pip", "install",
        "--dry-run", "--ignore-installed", "--no-input", "--no-cache-dir",
        "--disable-pip-version-check", "--timeout", str(PIP_TIMEOUT), "--report", str(report),
        "--index-url", pip.index.index_url_for(tag, target), *target.pip_options, "-r", str(requirements),
    ]  # fmt: skip
    if inputs.constraints:
        constraints = workdir / "constraints.txt"
        constraints.write_text("".join(line.pip_line() + "\n" for line in inputs.constraints))
        command += ["-c", str(constraints)]
    if inputs.pre:
        command.append("--pre")
    command += inputs.pip_options()
    env = _environment(pip, DEVPI_WARMUP_MARKERS=json.dumps(target.marker_environment))
    returncode, output = pip.children.run(command, env)
    resolution = Resolution(target)
    if returncode != 0:
        resolution.pip_output = output
        resolution.error = pip_failure(output) or f"pip exited with {returncode}"
        unknown = pip.index.unknown_for(tag)  # pip failed, and devpi has no such project: that is why
        if unknown:
            resolution.unknown_project = unknown[0]
            resolution.error = f"unknown package {unknown[0]!r}: the index has no such project"
        return resolution
    resolution.warnings += _pip_warnings(output)
    for item in json.loads(report.read_text())["install"]:
        info = item["download_info"]
        hashes = info.get("archive_info", {}).get("hashes", {})
        metadata = item["metadata"]
        name = canonicalize_name(metadata["name"])
        url = pip.index.devpi_url(info["url"])
        resolution.picks.append(Pick(name, metadata["version"], url, hashes.get("sha256"), metadata=metadata))
    return resolution


def _environment(pip: PipRun, **extra: str) -> dict[str, str]:
    """pip's environment: the allow-listed variables of this one, and what opens the gateway."""
    pip_tmp = pip.netrc.parent / "tmp"
    pip_tmp.mkdir(exist_ok=True)
    env = {key: os.environ[key] for key in _PIP_ENVIRONMENT if key in os.environ}
    env.update(
        PIP_CONFIG_FILE=os.devnull,  # only the devpi index: no pip.conf index or find-links
        NETRC=str(pip.netrc),
        TMPDIR=str(pip_tmp),  # inside the run's folder: removed with it, also on an interrupt
        **extra,
    )
    return env


def build_metadata(pip: PipRun, workdir: Path, filename: str, sdist_url: str, index_url: str) -> bytes:
    """An sdist's core metadata from its build backend, run here by pip (``pip install --dry-run
    --no-deps`` of the sdist, for this machine). Raises ``BuildFailed`` with pip's cause."""
    where = workdir / f"metadata-build-{hashlib.sha256(sdist_url.encode()).hexdigest()[:12]}"
    where.mkdir(parents=True, exist_ok=True)
    report = where / "report.json"
    command = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
        "--no-input", "--no-cache-dir", "--disable-pip-version-check", "--timeout", str(PIP_TIMEOUT),
        "--report", str(report), "--index-url", index_url, sdist_url,
    ]  # fmt: skip
    returncode, output = pip.children.run(command, _environment(pip))
    if returncode != 0:
        raise BuildFailed(pip_failure(output) or f"pip exited with {returncode}")
    try:
        return sdist.metadata_file(json.loads(report.read_text())["install"][0]["metadata"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise BuildFailed(f"pip reported no metadata for {filename}: {exc!r}") from None


def _pip_warnings(output: str) -> list[str]:
    """pip's warnings that matter offline: a yanked release it took, an extra that does not exist."""
    found = []
    for line in output.splitlines():
        line = line.strip()
        if line.startswith("WARNING:") and ("yanked" in line or "does not provide the extra" in line):
            found.append(_short(re.sub(r" at \S+", "", line.removeprefix("WARNING: "))))
    return list(dict.fromkeys(found))


def pip_failure(output: str) -> str:
    """The cause of a failed pip run in one sentence that names the package, from pip's output."""
    lines = [line.strip() for line in output.splitlines()]
    text = "\n".join(lines)
    conflict = re.search(
        r"Cannot install (.+?) because these package versions have conflicting dependencies", text
    )
    if conflict:
        causes = re.search(r"The conflict is caused by:\n((?:.+\n)+)", text + "\n")
        why = "; ".join(causes.group(1).strip().splitlines()) if causes else conflict.group(1)
        return _short(f"conflicting requirements: {why}")
    could_not = re.search(r"satisfies the requirement (.+?) \(from versions: ([^)]*)\)", text)
    missing = re.search(r"No matching distribution found for (.+)", text)
    if could_not or missing:  # pip 25 names the parent only on the first line, pip 26 on both
        what = could_not.group(1) if could_not else missing.group(1) if missing else ""
        have = f"; the index has {could_not.group(2)}" if could_not and could_not.group(2) != "none" else ""
        return _short(f"no file of {what} fits this target{have}")
    built = re.search(r"Encountered error while generating package metadata\.\n╰─> (\S+)", text)
    if built:
        block = re.findall(r"╰─> \[\d+ lines? of output\]\n((?:.*\n)*?)\[end of output\]", text)
        last = [line for line in block[0].splitlines() if line] if block else []
        cause = f": {last[-1]}" if last else ""
        return _short(f"building the metadata of {built.group(1)} on this machine failed{cause}")
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    return _short("; ".join(errors or [line for line in lines if line][-3:]))


def _short(text: str, limit: int = 400) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters."""
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."
