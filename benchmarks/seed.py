"""Benchmark the original write-up's matrix against its own loop, on the real PyPI.

Usage (from the repository root, python3.11 on PATH for the loop's venv; psutil installed, the
``bench`` extra; needs PyPI)::

    PYENV_VERSION=3.11.7:3.9.18:3.10.13:3.12.1:3.13.0 .tox/py311/bin/python benchmarks/seed.py [--repeat N]

The project's seed write-up warms ``pandas requests pydantic fastapi`` for CPython 3.9, 3.10,
3.13 x ``manylinux2014_x86_64``, ``win_amd64``, ``macosx_11_0_arm64`` with a loop of ``pip
download --only-binary=:all:`` per target (newest pip, in a venv). Each contender runs against
its own fresh devpi-server whose ``root/pypi`` mirrors the real PyPI, which carries sdists as
well as wheels: once cold (devpi stores nothing), once more (everything stored, the contender's
own caches kept). Printed per run: wall time, CPU seconds of the process tree and of
devpi-server meanwhile, peak RSS (largest sum over the tree), files devpi stores afterwards,
and the ratio loop/warmup; with ``--repeat N``
(the loop first in odd rounds, the warmup first in even ones) medians, then min / median / max.
Network time to PyPI is part of both; the ratio is of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warmbench.commands import make_pip, run_loop, warmup_argv, warmup_env
from warmbench.contenders import in_order, with_server_cpu
from warmbench.log import say
from warmbench.matrix import Matrix
from warmbench.measure import Run, measure
from warmbench.report import mb, spread
from warmbench.servers import pypi_client, stored
from warmbench.support import DevpiClient

REQUIREMENTS = "pandas\nrequests\npydantic\nfastapi\n"
SEED = Matrix(("3.9", "3.10", "3.13"), ("manylinux2014_x86_64", "win_amd64", "macosx_11_0_arm64"))
Round = dict[str, tuple[Run, Run, int]]  # contender -> (cold, again, files devpi stores)


def loop(pip: Path, index: str, requirements: Path, dest: Path, cache: Path, log: Path) -> Run:
    """The write-up's loop, target after target; stops at the first failure as ``set -e`` does."""
    return run_loop(pip, index, dest, cache, log, SEED.targets(), lambda *_: requirements)


def warmup(clientdir: Path, requirements: Path, cache: Path, report: Path, log: Path) -> Run:
    argv = warmup_argv(clientdir, ["-r", str(requirements)], SEED, "--report", str(report))
    return measure(argv, warmup_env(cache), log)


def one_round(workdir: Path, index: int, pip: Path, requirements: Path) -> Round:
    """Round ``index`` (from 1; the loop first in odd rounds): each contender on its own fresh devpi,
    cold and again, each run with the CPU time devpi-server spent meanwhile."""
    results = {}
    for name in in_order(index, "loop", "warmup"):
        where = workdir / name
        server, client, simple_url = pypi_client(where)
        try:
            runs = [
                with_server_cpu(
                    server, partial(contend, name, n, where, pip, requirements, client, simple_url)
                )
                for n in "12"
            ]
        finally:
            server.stop()
        results[name] = (runs[0], runs[1], stored(server)[0])
        say(f"{name}: cold {runs[0].seconds:.1f} s (exit {runs[0].returncode}, devpi-server"
            f" {runs[0].server_cpu:.1f} s CPU), again {runs[1].seconds:.1f} s (exit {runs[1].returncode}),"
            f" devpi stores {results[name][2]} files")  # fmt: skip
    return results


def contend(
    name: str, n: str, where: Path, pip: Path, requirements: Path, client: DevpiClient, simple_url: str
) -> Run:
    """Run ``n`` ("1" cold, "2" again) of contender ``name`` in ``where``."""
    log = where / "run.log"
    if name == "loop":
        return loop(pip, simple_url, requirements, where / "dest", where / "pip-cache", log)
    return warmup(client.clientdir, requirements, where / "xdg", where / f"report-{n}.json", log)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds, the loop first in odd ones, the warmup in even ones"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="devpi-warmup-seed-bench-"))
    requirements = workdir / "requirements.txt"
    requirements.write_text(REQUIREMENTS)
    pip = make_pip(workdir / "loop-venv")
    rounds = [one_round(workdir / f"round-{n}", n + 1, pip, requirements) for n in range(args.repeat)]
    say(f"\n{'':8} {'cold s':>8} {'cpu s':>7} {'devpi s':>7} {'rss MB':>7} {'again s':>8} {'cpu s':>7}"
        f" {'stored':>7}")  # fmt: skip
    for name in ("loop", "warmup"):
        cold = statistics.median(r[name][0].seconds for r in rounds)
        again = statistics.median(r[name][1].seconds for r in rounds)
        cpu = statistics.median(r[name][0].cpu for r in rounds)
        server_cpu = statistics.median(r[name][0].server_cpu for r in rounds)
        cpu_again = statistics.median(r[name][1].cpu for r in rounds)
        rss = max(mb(r[name][0].peaks.tree) for r in rounds)
        say(f"{name:8} {cold:8.1f} {cpu:7.1f} {server_cpu:7.1f} {rss:7.0f} {again:8.1f} {cpu_again:7.1f}"
            f" {rounds[0][name][2]:7}")  # fmt: skip
    ratios_cold = [r["loop"][0].seconds / r["warmup"][0].seconds for r in rounds]
    ratios_again = [r["loop"][1].seconds / r["warmup"][1].seconds for r in rounds]
    say(
        f"ratio loop/warmup: cold {statistics.median(ratios_cold):.2f}x,"
        f" again {statistics.median(ratios_again):.1f}x (goals: 2.5x, 10x)"
    )
    if len(rounds) > 1:
        print_spread(rounds, ratios_cold, ratios_again)
    say(f"logs and reports: {workdir}")
    failed = any(run.returncode for r in rounds for name in r for run in r[name][:2])
    return 1 if failed else 0


def print_spread(rounds: list[Round], ratios_cold: list[float], ratios_again: list[float]) -> None:
    """Each figure as min / median / max over the rounds."""
    say(f"min / median / max over {len(rounds)} rounds:")
    for name in ("loop", "warmup"):
        figures = (
            ("cold s", [r[name][0].seconds for r in rounds], ".1f"),
            ("cpu s", [r[name][0].cpu for r in rounds], ".1f"),
            ("devpi-server cpu s", [r[name][0].server_cpu for r in rounds], ".1f"),
            ("rss MB", [mb(r[name][0].peaks.tree) for r in rounds], ".0f"),
            ("again s", [r[name][1].seconds for r in rounds], ".1f"),
            ("cpu s", [r[name][1].cpu for r in rounds], ".1f"),
            ("stored", [r[name][2] for r in rounds], ".0f"),
        )
        say(f"  {name:8} " + "; ".join(f"{label} {spread(values, fmt)}" for label, values, fmt in figures))
    say(f"  ratio loop/warmup: cold {spread(ratios_cold, '.2f')}x, again {spread(ratios_again, '.1f')}x")


if __name__ == "__main__":
    sys.exit(main())
