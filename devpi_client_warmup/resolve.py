"""Per target: let pip resolve for that target and collect the files it chose."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .matrix import Target
from .sources import Inputs


@dataclass(frozen=True)
class Pick:
    """A file pip chose for a target."""

    name: str
    version: str
    url: str  # the gateway URL pip used (see Gateway.devpi_url)
    sha256: str | None

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
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class PipRun:
    """How to reach the index from pip: the gateway URL and the netrc that opens it."""

    index_url: str
    netrc: Path


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
        "--disable-pip-version-check", "--report", str(report),
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
        resolution.picks.append(Pick(metadata["name"], metadata["version"], info["url"], hashes.get("sha256")))
    for pick in resolution.picks:
        if pick.is_sdist:
            resolution.notes.append(
                f"{pick.name} {pick.version}: no wheel fits, the sdist is warmed and must be built"
                " on the target; its dependencies come from metadata built on this machine"
            )
    return resolution


def _pip_error(stderr: str) -> str:
    """pip's error, in as few lines as it takes."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR: ") for line in lines if line.startswith("ERROR:")]
    return "; ".join(errors or lines[-3:])
