"""Benchmark "large": 300 well-known top-level requirements x 25 targets, on the real PyPI.

Usage (from the repository root; python3.11 on PATH for the loop's venv; psutil installed, the
``bench`` extra; needs PyPI)::

    PYENV_VERSION=3.11.7:3.9.18:3.10.13:3.12.1:3.13.0 .tox/py311/bin/python benchmarks/large.py

The requirements are ``benchmarks/large-requirements.txt`` (306 lines of well-known PyPI
projects, unpinned; no PyTorch/TensorFlow-sized wheels). The matrix is CPython 3.9-3.13 x
``manylinux2014_x86_64``, ``manylinux_2_28_x86_64``, ``manylinux2014_aarch64``, ``win_amd64``,
``macosx_11_0_arm64``: 25 targets. devpi-server mirrors the real PyPI (sdists and wheels),
with ``--enable-core-metadata`` and ``mirror_provides_core_metadata`` on, as the README
recommends. Measured:

* ``devpi warmup`` cold (devpi stores nothing, empty tool cache) and again: wall and CPU
  seconds, peak RSS of the process tree, requests to devpi, bytes devpi fetched from PyPI
  against the unique bytes the targets need;
* the original loop (``pip download --only-binary=:all: --platform P --python-version V``,
  newest pip, its own cache) on 3 of the 25 targets against its own fresh devpi (devpi's
  default configuration, see ``bench_loop``), cold and again, extrapolated to 25: the loop's
  cost is per target (``--only loop`` or ``--only warmup`` runs one contender);
* the goal's yardstick: unique bytes / link speed (a 40 MB wheel fetched from PyPI directly)
  plus one pip resolution per target (measured: pip install --dry-run of one target against
  the warm devpi) spread over the machine's CPUs.

``--repeat N`` runs N rounds, each with fresh devpis and caches, the loop first in odd rounds
and the warmup first in even ones, and reports each figure as min / median / max. A round
takes about an hour on 2 CPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warmbench.commands import make_pip, one_resolution, run_loop, warmup_argv, warmup_env
from warmbench.log import say
from warmbench.matrix import Matrix
from warmbench.measure import Run, measure
from warmbench.report import mb, spread
from warmbench.servers import provide_core_metadata, pypi_client, server_requests, stored

REQUIREMENTS = Path(__file__).resolve().parent / "large-requirements.txt"
LARGE = Matrix(
    ("3.9", "3.10", "3.11", "3.12", "3.13"),
    (
        "manylinux2014_x86_64",
        "manylinux_2_28_x86_64",
        "manylinux2014_aarch64",
        "win_amd64",
        "macosx_11_0_arm64",
    ),
)
LOOP_TARGETS = (
    ("3.9", "manylinux2014_x86_64"),
    ("3.12", "manylinux_2_28_x86_64"),
    ("3.13", "macosx_11_0_arm64"),
)
TIMEOUT = 4 * 3600.0


def warmup(clientdir: Path, cache: Path, report: Path, log: Path) -> Run:
    argv = warmup_argv(clientdir, ["-r", str(REQUIREMENTS)], LARGE, "--report", str(report))
    return measure(argv, warmup_env(cache), log, timeout=TIMEOUT)


def loop(pip: Path, index: str, dest: Path, cache: Path, log: Path) -> Run:
    """The loop on LOOP_TARGETS; each target runs even when one before failed."""
    return run_loop(
        pip,
        index,
        dest,
        cache,
        log,
        LOOP_TARGETS,
        lambda *_: REQUIREMENTS,
        stop_on_failure=False,
        timeout=TIMEOUT,
    )


def link_speed() -> float:
    """Bytes per second of one large wheel fetched from PyPI directly (best of two)."""
    best = 0.0
    page = requests.get(
        "https://pypi.org/simple/scipy/",
        headers={"Accept": "application/vnd.pypi.simple.v1+json"},
        timeout=60,
    ).json()
    name = "scipy-1.14.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    wheel = next(f["url"] for f in page["files"] if f["filename"] == name)
    for _ in range(2):
        started = time.monotonic()
        size = len(requests.get(wheel, timeout=300).content)
        best = max(best, size / (time.monotonic() - started))
    return best


def unique_bytes(report: Path) -> tuple[int, int]:
    data = json.loads(report.read_text())
    files = {f["url"]: f["size"] or 0 for t in data["targets"] for f in t["files"]}
    return len(files), sum(files.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("warmup", "loop"), help="run one contender only")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds, the loop first in odd ones, the warmup in even ones"
    )
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="devpi-warmup-large-bench-"))
    pip = make_pip(workdir / "loop-venv")
    rounds: list[dict[str, tuple[float, float]]] = []
    for n in range(1, args.repeat + 1):
        where = workdir / f"round-{n}" if args.repeat > 1 else workdir
        order = ("loop", "warmup") if n % 2 else ("warmup", "loop")
        contenders = {"loop": bench_loop, "warmup": bench_warmup}
        rounds.append({name: contenders[name](where, pip) for name in order if args.only in (None, name)})
        if len(rounds[-1]) == 2:
            (loop_cold, loop_again), (cold, again) = rounds[-1]["loop"], rounds[-1]["warmup"]
            say(
                f"ratio loop (extrapolated) / warmup: cold {loop_cold / cold:.1f}x, again {loop_again / again:.1f}x"
            )
    if len(rounds) > 1:
        summarize(rounds)
    say(f"logs and reports: {workdir}")
    return 0


def summarize(rounds: list[dict[str, tuple[float, float]]]) -> None:
    """Each contender's wall seconds, and the ratios, as min / median / max over the rounds."""
    say(f"min / median / max over {len(rounds)} rounds:")
    for name in rounds[0]:
        cold, again = [r[name][0] for r in rounds], [r[name][1] for r in rounds]
        say(f"  {name}: cold {spread(cold, '.0f')} s, again {spread(again, '.1f')} s")
    if len(rounds[0]) == 2:
        cold = [r["loop"][0] / r["warmup"][0] for r in rounds]
        again = [r["loop"][1] / r["warmup"][1] for r in rounds]
        say(f"  ratio loop / warmup: cold {spread(cold, '.1f')}x, again {spread(again, '.1f')}x")


def bench_warmup(workdir: Path, pip: Path) -> tuple[float, float]:
    """devpi warmup cold and again, against a devpi providing core metadata: (cold s, again s)."""
    speed = link_speed()
    say(f"link: {speed / 2**20:.1f} MB/s (a 40 MB wheel from PyPI directly)")
    where = workdir / "warmup"
    server, client, simple_url = pypi_client(where)
    try:
        provide_core_metadata(client)
        results = {}
        for phase in ("cold", "again"):
            before = server_requests(server)
            run = warmup(client.clientdir, where / "xdg", where / f"report-{phase}.json", where / "run.log")
            results[phase] = (run, server_requests(server) - before, stored(server)[1])
            say(f"warmup {phase}: {run.seconds:.1f} s, cpu {run.cpu:.1f} s, peak RSS tree"
                f" {mb(run.peaks.tree):.0f} MB, {results[phase][1]} requests to devpi,"
                f" devpi stores {results[phase][2] / 2**20:.0f} MB, exit {run.returncode}")  # fmt: skip
        files, needed = unique_bytes(where / "report-cold.json")
        say(f"unique files the 25 targets need: {files}, {needed / 2**20:.0f} MB")
        t1 = one_resolution(pip, simple_url, REQUIREMENTS, where / "resolution.log")
        say(f"one pip resolution of one target against the warm devpi: {t1:.1f} s")
    finally:
        server.stop()
    cpus = os.cpu_count() or 1
    yardstick = needed / speed + len(LARGE.targets()) * t1 / cpus
    cold, again = results["cold"][0].seconds, results["again"][0].seconds
    say(f"yardstick: {needed / 2**20:.0f} MB / {speed / 2**20:.1f} MB/s + 25 x {t1:.1f} s / {cpus} CPUs = {yardstick:.0f} s;"
        f" warmup cold is {cold / yardstick:.2f}x of it (goal: within 3x); again {again:.1f} s (goal: under 60 s)")  # fmt: skip
    return cold, again


def bench_loop(workdir: Path, pip: Path) -> tuple[float, float]:
    """The loop on LOOP_TARGETS, cold and again, extrapolated to 25 targets: (cold s, again s).

    Its devpi keeps devpi's default, without mirror_provides_core_metadata: with it, devpi
    advertises PEP 658 metadata for every wheel and answers 404 where the upstream has none
    (some wheels, as PyPI is reached here), on which pip download stops (devpi warmup reads
    such a wheel instead)."""
    where = workdir / "loop"
    server, _client, simple_url = pypi_client(where)
    try:
        loops = [loop(pip, simple_url, where / "dest", where / "pip-cache", where / "run.log") for _ in "12"]
    finally:
        server.stop()
    scale = len(LARGE.targets()) / len(LOOP_TARGETS)
    for phase, run in zip(("cold", "again"), loops):
        say(f"loop {phase} on {len(LOOP_TARGETS)} targets: {run.seconds:.1f} s, cpu {run.cpu:.1f} s,"
            f" peak RSS tree {mb(run.peaks.tree):.0f} MB, exit {run.returncode};"
            f" x{scale:.2f} for 25 targets: {run.seconds * scale:.0f} s")  # fmt: skip
    return loops[0].seconds * scale, loops[1].seconds * scale


if __name__ == "__main__":
    sys.exit(main())
