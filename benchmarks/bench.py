"""Benchmark ``devpi warmup`` against the seed's ``pip download`` loop.

Usage (from the repository root; python3.11 must be on PATH, for the loop's venv; psutil
installed, the ``bench`` extra)::

    PYENV_VERSION=3.11.7:3.9.18:3.10.13:3.12.1:3.13.0 .tox/py311/bin/python benchmarks/bench.py [--repeat N] [--keep] [--scenario all|requirements|lock]

The matrix is CPython 3.10, 3.12, 3.13 x manylinux2014_x86_64, win_amd64, macosx_11_0_arm64
(9 targets).  Two scenarios:

* requirements: ``benchmarks/requirements.txt`` resolved.  The contenders are the seed script's
  loop (one ``pip download --only-binary=:all: -r requirements.txt`` per platform and Python,
  newest pip, in a venv) and ``devpi warmup -r requirements.txt`` for the whole matrix.
* lock: ``benchmarks/pylock.toml`` (62 releases of 57 packages, hash-pinned, universal; made by
  ``benchmarks/make_lock.py`` from ``benchmarks/lock-requirements.txt``).  The contenders are the
  seed loop over the same lock exported as hash-pinned requirements
  (``benchmarks/pylock-requirements.txt``), ``pip download --only-binary=:all: --no-deps -r
  pinned.txt`` per target, with each target's file holding the lines whose markers hold there
  (pip would evaluate them for its own Python 3.11 on Linux and fail), and ``devpi warmup --lock
  benchmarks/pylock.toml`` for the whole matrix.  After the warmup re-run, the project pages and
  file probes of its report are timed on their own against the same devpi ("the time of the
  cache probes" the re-run target speaks of).

The first run fills the corpus, ``$DEVPI_WARMUP_BENCH_CACHE/files`` (default
``~/.cache/devpi-warmup-bench/files``), from the real PyPI (a throwaway devpi-server mirroring it;
both requirements contenders run against it with their files kept there, then ``devpi warmup
--lock pylock.toml --dest`` for files of the lock still missing; that takes a few minutes) and
later runs reuse it; delete the folder to refill.  That folder is then served as a local simple
index, and each contender runs against its own fresh devpi-server whose mirror index points at
it: once cold (devpi stores nothing) and once more (everything is cached, the contender's own
caches are kept, as a user re-running it would have them).  Printed: wall time, peak RSS (of the
started process, of its largest descendant and the largest sum over the process tree, sampled
every 50 ms with psutil), CPU seconds, the bytes devpi fetched from the upstream, the files each
contender made devpi store, whether the project's targets are met (requirements: cold >= 2.5x,
re-run >= 10x faster than the loop; lock: re-run >= 30x faster than the pinned loop; peak RSS <
150 MB), and where devpi warmup's time went (its --report JSON: ``resolved_by``, per-target
``seconds``, ``timings``).  ``--repeat N`` runs N rounds, the loop first in odd rounds and the
warmup first in even ones; the table shows medians, then each figure as min / median / max.
``--keep`` keeps the temporary directories (logs, --report JSON), ``--jobs N`` is passed on to
``devpi warmup``, ``--scenario`` runs one scenario only.  This is a report: the exit code is 1
only if a contender failed.  The code is in the ``warmbench`` package beside this script.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from warmbench.commands import make_pip
from warmbench.contenders import FOLDERS, SCENARIOS, Result, in_order, run_contender
from warmbench.corpus import (
    FILES,
    LOCK,
    cache_is_filled,
    fill_cache,
    fill_lock_cache,
    lock_cache_is_filled,
)
from warmbench.log import say
from warmbench.report import report
from warmbench.servers import serve_files


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="devpi warmup vs the seed's pip download loop")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="run N rounds, the loop first in odd ones, the warmup first in even ones (default 1)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    parser.add_argument(
        "--jobs", type=int, metavar="N", help="pass --jobs N to devpi warmup (default: its default)"
    )
    parser.add_argument(
        "--scenario",
        choices=("all", "requirements", "lock"),
        default="all",
        help="requirements.txt resolved, the lock (pylock.toml), or both (default)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def bench(
    workdir: Path, repeat: int, warmup_extra: Sequence[str] = (), scenario: str = "all"
) -> dict[str, list[Result]]:
    """Fill the corpus if needed, serve it, and run ``repeat`` rounds of the scenario's contenders."""
    pip = make_pip(workdir / "seed-venv")
    if cache_is_filled():
        say(f"reusing the file cache {FILES}")
    else:
        fill_cache(workdir, pip)
    if scenario != "requirements":
        if lock_cache_is_filled():
            say(f"the file cache holds every file of {LOCK.name}")
        else:
            fill_lock_cache(workdir)
    scenarios = [name for name in SCENARIOS if scenario in ("all", name)]
    runs: dict[str, list[Result]] = {name: [] for key in scenarios for name in SCENARIOS[key]}
    upstream = serve_files(FILES)
    try:
        for index in range(1, repeat + 1):
            for key in scenarios:
                for name in in_order(index, *SCENARIOS[key]):
                    where = workdir / f"{FOLDERS[name]}-{index}"
                    runs[name].append(run_contender(name, where, upstream, pip, warmup_extra))
    finally:
        upstream.stop()
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="devpi-warmup-bench-"))
    say(f"working directory {workdir}" + ("" if args.keep else " (removed at the end; --keep keeps it)"))
    try:
        runs = bench(workdir, args.repeat, ["--jobs", str(args.jobs)] if args.jobs else [], args.scenario)
        report(runs)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    failed = [r.name for results in runs.values() for r in results if not r.ok]
    if failed:
        print(f"\nFAILED: {', '.join(sorted(set(failed)))} (see the output above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
