"""bench.py's report: the table, min / median / max over rounds, ratios and goals, files, warmup timings."""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .contenders import LOCK_LOOP, LOCK_WARMUP, LOOP, WARMUP, Result
from .corpus import LOCK, PINNED, REQUIREMENTS, count_requirements, lock_packages
from .matrix import BENCH
from .measure import Peaks, Run

# the project's goals
TARGET_COLD = 2.5  # requirements: loop / warmup, cold
TARGET_RERUN = 10.0  # requirements: loop / warmup, re-run
TARGET_LOCK_RERUN = 30.0  # lock: pinned loop / warmup --lock, re-run
TARGET_RSS_MB = 150.0  # peak RSS of devpi warmup


def mb(size: int) -> float:
    """Bytes of memory in MB (MiB)."""
    return size / 2**20


def size_mb(size: int) -> float:
    """Bytes of files in MB (10**6)."""
    return size / 1e6


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], fmt: str) -> str:
    """``min / median / max`` of ``values``."""
    return " / ".join(format(value, fmt) for value in (min(values), median(values), max(values)))


def peak(results: Sequence[Result]) -> Peaks:
    total = Peaks()
    for result in results:
        total = total.merge(result.cold.peaks).merge(result.rerun.peaks)
    return total


def print_table(runs: dict[str, list[Result]]) -> None:
    header = (
        f"{'contender':<18} {'cold s':>8} {'re-run s':>9} {'peak RSS MB':>12} "
        f"{'(child':>7} {'tree)':>6} {'upstream MB':>12} {'files':>6} {'re-run up MB':>13}"
    )
    print(header)
    print("-" * len(header))
    for name, results in runs.items():
        peaks = peak(results)
        first = results[0]
        print(
            f"{name:<18} {median([r.cold.seconds for r in results]):>8.1f}"
            f" {median([r.rerun.seconds for r in results]):>9.2f} {mb(peaks.main):>12.0f}"
            f" {mb(peaks.child):>7.0f} {mb(peaks.tree):>6.0f}"
            f" {size_mb(first.cold_traffic.bytes):>12.1f} {len(first.cold_traffic.files):>6}"
            f" {size_mb(first.rerun_traffic.bytes):>13.1f}"
        )
    print(
        "cold s, re-run s: medians over the rounds.  peak RSS MB: the largest RSS of the started process\n"
        "(for the loops: of a pip download) in one 50 ms sample; child: of any process below it; tree: the\n"
        "largest sum of RSS over the process tree in one sample (peaks: the largest of every round).\n"
        "upstream MB / files: file bodies devpi fetched from the upstream during the first round's cold run\n"
        "(files = distinct files = what devpi now stores)."
    )
    print(f"CPU seconds (medians; this machine has {os.cpu_count()} CPUs):")
    for name, results in runs.items():
        parts = []
        for phase in ("cold", "rerun"):
            phase_runs = [getattr(r, phase) for r in results]
            cpu = median([r.cpu for r in phase_runs])
            main_cpu = median([r.main_cpu for r in phase_runs])
            server = median([r.server_cpu for r in phase_runs])
            parts.append(
                f"{phase} {cpu:.1f} (main process {main_cpu:.1f}, its children {cpu - main_cpu:.1f};"
                f" devpi-server {server:.1f})"
            )
        print(f"  {name}: {'; '.join(parts)}")


# (label, figure of one round, format) for the spread over rounds
FIGURES: list[tuple[str, Callable[[Result], float], str]] = [
    ("cold s", lambda r: r.cold.seconds, ".1f"),
    ("re-run s", lambda r: r.rerun.seconds, ".2f"),
    ("cold CPU s", lambda r: r.cold.cpu, ".1f"),
    ("re-run CPU s", lambda r: r.rerun.cpu, ".1f"),
    ("devpi-server CPU s, cold", lambda r: r.cold.server_cpu, ".1f"),
    ("devpi-server CPU s, re-run", lambda r: r.rerun.server_cpu, ".1f"),
    ("peak RSS MB", lambda r: mb(max(r.cold.peaks.main, r.rerun.peaks.main)), ".0f"),
    ("peak RSS MB, child", lambda r: mb(max(r.cold.peaks.child, r.rerun.peaks.child)), ".0f"),
    ("peak RSS MB, tree", lambda r: mb(max(r.cold.peaks.tree, r.rerun.peaks.tree)), ".0f"),
    ("upstream MB", lambda r: size_mb(r.cold_traffic.bytes), ".1f"),
    ("files", lambda r: len(r.cold_traffic.files), ".0f"),
    ("re-run upstream MB", lambda r: size_mb(r.rerun_traffic.bytes), ".1f"),
]


def print_spread(runs: dict[str, list[Result]]) -> None:
    """Each figure of each contender as min / median / max over the rounds, and round by round."""
    rounds = len(next(iter(runs.values())))
    print(f"\nover {rounds} rounds (odd rounds ran the loop first, even rounds the warmup):")
    print(f"  {'figure':<28} {'min / median / max':>24}   each round")
    for name, results in runs.items():
        print(f"  {name}")
        for label, figure, fmt in FIGURES:
            values = [figure(r) for r in results]
            each = ", ".join(format(value, fmt) for value in values)
            print(f"    {label:<26} {spread(values, fmt):>24}   {each}")


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def ratio(loop: list[Result], warmup: list[Result], phase: str) -> float:
    """The loop's median seconds over the warmup's."""
    return median([getattr(r, phase).seconds for r in loop]) / median(
        [getattr(r, phase).seconds for r in warmup]
    )


def print_round_ratios(loop: list[Result], warmup: list[Result]) -> None:
    """loop / warmup of each round, as min / median / max (with more than one round)."""
    if len(loop) < 2:
        return
    for phase, label, fmt in (("cold", "cold", ".2f"), ("rerun", "re-run", ".1f")):
        values = [getattr(a, phase).seconds / getattr(b, phase).seconds for a, b in zip(loop, warmup)]
        print(f"  {label:<6} loop/warmup of each round, min / median / max: {spread(values, fmt)}")


def print_targets(loop: list[Result], warmup: list[Result]) -> None:
    cold, rerun = ratio(loop, warmup, "cold"), ratio(loop, warmup, "rerun")
    print(f"cold   loop/warmup = {cold:.2f}x  (target >= {TARGET_COLD}x): {verdict(cold >= TARGET_COLD)}")
    print(f"re-run loop/warmup = {rerun:.2f}x  (target >= {TARGET_RERUN}x): {verdict(rerun >= TARGET_RERUN)}")
    print_round_ratios(loop, warmup)
    print_rss(warmup)


def print_lock_targets(loop: list[Result], warmup: list[Result]) -> None:
    cold, rerun = ratio(loop, warmup, "cold"), ratio(loop, warmup, "rerun")
    print(f"cold   pinned loop/warmup --lock = {cold:.2f}x  (no target; for comparison)")
    print(
        f"re-run pinned loop/warmup --lock = {rerun:.2f}x  (target >= {TARGET_LOCK_RERUN:.0f}x):"
        f" {verdict(rerun >= TARGET_LOCK_RERUN)}"
    )
    print_round_ratios(loop, warmup)
    floors = [r.floor for r in warmup if r.floor is not None]
    if floors:
        sequential, parallel = median([f.sequential for f in floors]), median([f.parallel for f in floors])
        pages_s = median([f.pages_sequential for f in floors])
        rerun_s = median([r.rerun.seconds for r in warmup])
        print(
            f"the cache probes alone ({floors[0].pages} project pages + {floors[0].probes} file probes, timed from"
            f" this process against the same warm devpi): {sequential:.2f} s one after the other"
            f" (pages {pages_s:.2f} s, probes {sequential - pages_s:.2f} s),"
            f" {parallel:.2f} s on {floors[0].threads} threads; warmup --lock re-run {rerun_s:.2f} s"
            f" = {rerun_s / parallel:.1f}x the parallel probes"
        )
        if len(floors) > 1:
            print(
                f"  parallel probes of each round, min / median / max: {spread([f.parallel for f in floors], '.2f')} s"
            )
        loop_rerun = median([r.rerun.seconds for r in loop])
        print(
            f"  pinned loop re-run / parallel probes = {loop_rerun / parallel:.1f}x"
            f" (the most any warmup could reach here without asking devpi less)"
        )
    print_rss(warmup)


def print_rss(warmup: list[Result]) -> None:
    peaks = peak(warmup)
    print(
        f"peak RSS of the {warmup[0].name} process = {mb(peaks.main):.0f} MB"
        f" (target < {TARGET_RSS_MB:.0f} MB): {verdict(mb(peaks.main) < TARGET_RSS_MB)}"
    )
    print(
        f"  its largest child process {mb(peaks.child):.0f} MB;"
        f" whole process tree at its peak {mb(peaks.tree):.0f} MB"
        f" ({verdict(mb(peaks.tree) < TARGET_RSS_MB)} if the target means the tree)"
    )


def print_files(loop: Result, warmup: Result) -> None:
    loop_files, warm_files = set(loop.cold_traffic.files), set(warmup.cold_traffic.files)
    print(
        f"files devpi stores after the cold run: {loop.name} {len(loop_files)}, {warmup.name} {len(warm_files)}"
    )
    print(f"  warmup >= loop: {'yes' if len(warm_files) >= len(loop_files) else 'NO'}")
    only_warmup, only_loop = sorted(warm_files - loop_files), sorted(loop_files - warm_files)
    print(f"  fetched by warmup only ({len(only_warmup)}): {', '.join(only_warmup) or '-'}")
    print(f"  fetched by the loop only ({len(only_loop)}): {', '.join(only_loop) or '-'}")
    for result in (loop, warmup):
        again = [name for name, count in result.cold_traffic.files.items() if count > 1]
        print(
            f"  {result.name}: upstream page GETs cold {result.cold_traffic.pages},"
            f" re-run {result.rerun_traffic.pages}; files fetched twice in the cold run: {len(again)};"
            f" files fetched in the re-run: {len(result.rerun_traffic.files)}"
        )


def describe_report(path: Path, run_: Run) -> list[str]:
    """Where devpi warmup's time went, from its --report JSON and the CPU times."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [f"  (no report: {exc})"]
    targets = data.get("targets", [])
    seconds = sorted(float(t.get("seconds", 0)) for t in targets)
    files: dict[str, dict[str, Any]] = {}
    for target in targets:
        for item in target.get("files", []):
            files[item["url"]] = item
    fetched = [f for f in files.values() if f.get("fetched")]
    cached = [f for f in files.values() if f.get("cached_before")]
    total = float(data.get("timings", {}).get("total_seconds", 0))
    wall = run_.seconds
    lines = [
        (
            f"  wall {wall:.2f} s; pipeline total_seconds {total:.2f} s"
            f" (so {wall - total:.2f} s outside it: interpreter start, devpi-client, preflight, report)"
        ),
        (
            f"  CPU {run_.cpu:.2f} s: devpi warmup process {run_.main_cpu:.2f} s, its children (pip)"
            f" {run_.cpu - run_.main_cpu:.2f} s; devpi-server {run_.server_cpu:.2f} s"
        ),
    ]
    if seconds:
        resolved_by = Counter(t.get("resolved_by") for t in targets)
        lines.append(
            f"  resolved_by: {dict(resolved_by)}; per-target resolution seconds: min {seconds[0]:.2f},"
            f" median {median(seconds):.2f}, max {seconds[-1]:.2f}, sum {sum(seconds):.2f} over {len(seconds)} targets"
        )
        statuses = Counter(t.get("status") for t in targets)
        lines.append(f"  statuses: {dict(statuses)}; slowest: {slowest(targets)}")
    lines.append(
        f"  {len(files)} unique files, {len(fetched)} fetched now"
        f" ({size_mb(sum(f.get('size') or 0 for f in fetched)):.1f} MB), {len(cached)} cached before"
    )
    for key in ("notes", "problems"):
        if data.get(key):
            lines.append(f"  {key}: {'; '.join(data[key])[:600]}")
    return lines


def slowest(targets: list[dict[str, Any]], count: int = 3) -> str:
    ranked = sorted(targets, key=lambda t: -float(t.get("seconds", 0)))[:count]
    return ", ".join(f"{t['name']} {float(t['seconds']):.2f} s" for t in ranked)


def print_warmup_timings(results: list[Result]) -> None:
    for index, result in enumerate(results, 1):
        for phase, run_ in (("cold", result.cold), ("rerun", result.rerun)):
            print(f"{result.name} {phase} run (repeat {index}):")
            print("\n".join(describe_report(result.reports.get(phase, Path("-")), run_)))


def report(runs: dict[str, list[Result]]) -> None:
    print("\n=== results ===")
    print(f"matrix: {BENCH.describe()}")
    if LOOP in runs:
        print(f"requirements scenario: {REQUIREMENTS.name}: {count_requirements()} requirements")
    if LOCK_LOOP in runs:
        packages = lock_packages()
        print(
            f"lock scenario: {LOCK.name}: {len(packages)} locked releases of {len({n for n, _ in packages})} packages"
            f" ({PINNED.name} for the pinned loop: markers evaluated per target, --no-deps)"
        )
    print_table(runs)
    if len(next(iter(runs.values()))) > 1:
        print_spread(runs)
    for loop_name, warmup_name, targets in (
        (LOOP, WARMUP, print_targets),
        (LOCK_LOOP, LOCK_WARMUP, print_lock_targets),
    ):
        if loop_name in runs:
            print()
            targets(runs[loop_name], runs[warmup_name])
    for loop_name, warmup_name in ((LOOP, WARMUP), (LOCK_LOOP, LOCK_WARMUP)):
        if loop_name in runs:
            print()
            print_files(runs[loop_name][0], runs[warmup_name][0])
    for warmup_name in (WARMUP, LOCK_WARMUP):
        if warmup_name in runs:
            print()
            print_warmup_timings(runs[warmup_name])
