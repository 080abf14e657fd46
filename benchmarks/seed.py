"""Benchmark the original write-up's matrix against its own loop, on the real PyPI.

Usage (from the repository root, python3.11 on PATH for the loop's venv; needs PyPI)::

    PYENV_VERSION=3.11.7:3.9.18:3.10.13:3.12.1:3.13.0 .tox/py311/bin/python benchmarks/seed.py [--repeat N]

The write-up (``shared/seeds``) warms ``pandas requests pydantic fastapi`` for CPython 3.9,
3.10, 3.13 x ``manylinux2014_x86_64``, ``win_amd64``, ``macosx_11_0_arm64`` with a loop of
``pip download --only-binary=:all:`` per target (newest pip, in a venv). Each contender runs
against its own fresh devpi-server whose ``root/pypi`` mirrors the real PyPI, which carries
sdists as well as wheels: once cold (devpi stores nothing), once more (everything stored, the
contender's own caches kept). Printed per run: wall time, CPU seconds of the process tree, peak
RSS (largest sum over the tree), files devpi stores afterwards, and the ratio loop/warmup.
Network time to PyPI is part of both; the ratio is of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench import Run, make_pip, measure, pypi_client, say

from tests.support.devpi import clean_env

REQUIREMENTS = "pandas\nrequests\npydantic\nfastapi\n"
PYTHONS = ("3.9", "3.10", "3.13")
PLATFORMS = ("manylinux2014_x86_64", "win_amd64", "macosx_11_0_arm64")


def loop(pip: Path, index: str, requirements: Path, dest: Path, cache: Path, log: Path) -> Run:
    """The write-up's loop, target after target; stops at the first failure as ``set -e`` does."""
    env = clean_env(PIP_CACHE_DIR=str(cache))
    env.pop("PIP_NO_CACHE_DIR", None)
    total = Run()
    for platform in PLATFORMS:
        for python in PYTHONS:
            nodot = python.replace(".", "")
            argv = [
                str(pip), "download", "--disable-pip-version-check", "--index-url", index,
                "--platform", platform, "--python-version", nodot, "--implementation", "cp",
                "--abi", f"cp{nodot}", "--only-binary=:all:", "--dest", str(dest), "-r", str(requirements),
            ]  # fmt: skip
            total = total.then(measure(argv, env, log))
            if total.returncode:
                return total
    return total


def warmup(clientdir: Path, requirements: Path, cache: Path, report: Path, log: Path) -> Run:
    argv = [
        str(Path(sys.executable).parent / "devpi"), "--clientdir", str(clientdir), "warmup",
        "-r", str(requirements), "--python", ",".join(PYTHONS), "--platform", ",".join(PLATFORMS),
        "--report", str(report),
    ]  # fmt: skip
    return measure(argv, clean_env(XDG_CACHE_HOME=str(cache)), log)


def stored_files(server_dir: Path) -> int:
    """Files the devpi-server stores (its +files tree)."""
    return sum(1 for path in (server_dir / "+files").rglob("*") if path.is_file())


def one_round(workdir: Path, pip: Path, requirements: Path) -> dict[str, tuple[Run, Run, int]]:
    """Both contenders, each against its own fresh devpi: (cold, again, files stored)."""
    results = {}
    for name in ("loop", "warmup"):
        where = workdir / name
        log = where / "run.log"
        server, client, simple_url = pypi_client(where)
        try:
            if name == "loop":
                runs = [
                    loop(pip, simple_url, requirements, where / "dest", where / "pip-cache", log)
                    for _ in "12"
                ]
            else:
                runs = [warmup(client.clientdir, requirements, where / "xdg", where / f"report-{n}.json", log)
                        for n in "12"]  # fmt: skip
        finally:
            server.stop()
        results[name] = (runs[0], runs[1], stored_files(where / "fill-server"))
        say(f"{name}: cold {runs[0].seconds:.1f} s (exit {runs[0].returncode}),"
            f" again {runs[1].seconds:.1f} s (exit {runs[1].returncode}), devpi stores {results[name][2]} files")  # fmt: skip
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="devpi-warmup-seed-bench-"))
    requirements = workdir / "requirements.txt"
    requirements.write_text(REQUIREMENTS)
    pip = make_pip(workdir / "loop-venv")
    rounds = [one_round(workdir / f"round-{n}", pip, requirements) for n in range(args.repeat)]
    say(f"\n{'':8} {'cold s':>8} {'cpu s':>7} {'rss MB':>7} {'again s':>8} {'cpu s':>7} {'stored':>7}")
    for name in ("loop", "warmup"):
        cold = statistics.median(r[name][0].seconds for r in rounds)
        again = statistics.median(r[name][1].seconds for r in rounds)
        cpu = statistics.median(r[name][0].cpu for r in rounds)
        cpu_again = statistics.median(r[name][1].cpu for r in rounds)
        rss = max(r[name][0].peaks.tree_kb for r in rounds) / 1024
        say(
            f"{name:8} {cold:8.1f} {cpu:7.1f} {rss:7.0f} {again:8.1f} {cpu_again:7.1f} {rounds[0][name][2]:7}"
        )
    ratio_cold = statistics.median(r["loop"][0].seconds / r["warmup"][0].seconds for r in rounds)
    ratio_again = statistics.median(r["loop"][1].seconds / r["warmup"][1].seconds for r in rounds)
    say(f"ratio loop/warmup: cold {ratio_cold:.2f}x, again {ratio_again:.1f}x (goals: 2.5x, 10x)")
    say(f"logs and reports: {workdir}")
    failed = any(run.returncode for r in rounds for name in r for run in r[name][:2])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
