"""Running pip for a target: its environment, the register of pip processes, its failures in one sentence."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from packaging.utils import canonicalize_name

from ..errors import BuildFailed
from ..index import sdist
from ..index.cache import Kind
from ..inputs.requirements import Inputs
from ..matrix import Target
from .resolution import Pick, Resolution

# All that pip and the build backends it may start get from this process's environment: no
# credentials (DEVPI_INDEX may hold a password), no PIP_* settings, and no proxies (pip talks
# only to the gateway on 127.0.0.1; the gateway reaches devpi with the user's proxy settings).
_PIP_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "SYSTEMROOT")


# pip's socket timeout: the gateway bounds every wait on devpi (index.access.TIMEOUT), but an answer
# may also wait for an sdist's metadata build here, which can take many minutes
PIP_TIMEOUT = 3600


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

    def announced_sha256(self, url: str) -> str | None: ...


class Memo(Protocol):
    """Facts kept across runs (see index.cache.Cache)."""

    def get(self, kind: Kind, key: str) -> bytes | None: ...

    def put(self, kind: Kind, key: str, data: bytes) -> None: ...


def run_pip(target: Target, inputs: Inputs, pip: PipRun, workdir: Path, tag: str) -> Resolution:
    """Run ``pip install --dry-run --report`` for ``target`` and read the files it chose."""
    workdir.mkdir(exist_ok=True)  # in the run's folder; never made again once that is removed
    requirements = workdir / "requirements.txt"
    requirements.write_text("".join(line.pip_line() + "\n" for line in inputs.requirements))
    report = workdir / "report.json"
    command = [
        sys.executable, "-m", "devpi_client_warmup.resolve._pip", "install",
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
        kept = {} if url.endswith(".whl") else metadata  # only an sdist's is used later (add_builds)
        sha256 = hashes.get("sha256") or pip.index.announced_sha256(url)  # see Gateway's pip_checks_hashes
        resolution.picks.append(Pick(name, metadata["version"], url, sha256, metadata=kept))
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
    where.mkdir(exist_ok=True)
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
