"""bench.py's contenders, each cold and again on its own fresh devpi over the local upstream.

The loop and ``devpi warmup`` over ``requirements.txt``; the pinned loop and ``devpi warmup
--lock`` over the lock.  Each returns a ``Result``: both runs measured, with what devpi fetched
from the upstream meanwhile.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import requests

from .commands import run_loop, warmup_argv, warmup_env
from .corpus import FILES, LOCK, REQUIREMENTS, write_pinned
from .log import log_tail, say
from .matrix import BENCH
from .measure import Run, cpu_seconds, measure
from .servers import fresh_scene, server_pid
from .support import DevpiScene, DevpiServer, Upstream

LOOP, WARMUP = "pip download loop", "devpi warmup"
LOCK_LOOP, LOCK_WARMUP = "pinned pip loop", "warmup --lock"
SCENARIOS = {"requirements": (LOOP, WARMUP), "lock": (LOCK_LOOP, LOCK_WARMUP)}  # (loop, warmup)
FOLDERS = {LOOP: "loop", WARMUP: "warmup", LOCK_LOOP: "lock-loop", LOCK_WARMUP: "lock-warmup"}

T = TypeVar("T")


def in_order(round_: int, loop: T, warmup: T) -> list[T]:
    """The contenders of round ``round_`` (from 1) in the order they run: loop first in odd rounds."""
    return [loop, warmup] if round_ % 2 else [warmup, loop]


@dataclass
class Traffic:
    """What devpi asked the upstream for during one run."""

    files: Counter[str]  # filename -> GETs
    pages: int

    @property
    def bytes(self) -> int:
        return sum((FILES / name).stat().st_size * count for name, count in self.files.items())


def traffic(upstream: Upstream) -> Traffic:
    files: Counter[str] = Counter()
    pages = 0
    for path in upstream.paths("GET"):
        if path.startswith("/files/"):
            files[path[len("/files/") :]] += 1
        elif path.startswith("/simple/"):
            pages += 1
    return Traffic(files, pages)


@dataclass
class Floor:
    """The requests a lock re-run cannot avoid, timed on their own against the same warm devpi."""

    pages: int  # project pages (PEP 691 JSON), each once
    probes: int  # JSON views of the +f/ files (devpi's "is it stored?"), each once
    sequential: float  # seconds, one request after the other on one keep-alive session
    pages_sequential: float  # ... of which the project pages
    parallel: float  # seconds, spread over os.cpu_count() threads (warmup's default --jobs)
    threads: int


@dataclass
class Result:
    name: str
    cold: Run
    rerun: Run
    cold_traffic: Traffic
    rerun_traffic: Traffic
    reports: dict[str, Path] = field(default_factory=dict)  # phase -> devpi warmup's --report JSON
    floor: Floor | None = None  # what a re-run must at least ask devpi, timed (lock scenario)

    @property
    def ok(self) -> bool:
        return not (self.cold.returncode or self.rerun.returncode)


def probe_floor(scene: DevpiScene, report_path: Path) -> Floor:
    """Time each project page and each file probe of a warmup run's report, as warmup asks them."""
    data = json.loads(report_path.read_text(encoding="utf-8"))
    files = [f for target in data["targets"] for f in target["files"]]
    requests_ = [
        (f"{scene.simple_url}{project}/", "application/vnd.pypi.simple.v1+json")
        for project in sorted({f["project"] for f in files})
    ]
    pages = len(requests_)
    requests_ += [(url, "application/json") for url in sorted({f["url"] for f in files})]
    local = threading.local()

    def get(item: tuple[str, str]) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        local.session.get(item[0], headers={"Accept": item[1]}, timeout=120).raise_for_status()

    started = time.monotonic()
    for item in requests_[:pages]:
        get(item)
    pages_sequential = time.monotonic() - started
    for item in requests_[pages:]:
        get(item)
    sequential = time.monotonic() - started
    threads = os.cpu_count() or 1
    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(get, requests_[:pages]))  # pages first: warmup picks files from them
        list(pool.map(get, requests_[pages:]))
    parallel = time.monotonic() - started
    return Floor(pages, len(requests_) - pages, sequential, pages_sequential, parallel, threads)


def cold_and_again(
    name: str,
    workdir: Path,
    upstream: Upstream,
    contender: Callable[[DevpiScene, str], Run],
    after: Callable[[DevpiScene, Result], None] | None = None,
) -> Result:
    """Run ``contender`` on a fresh devpi ("cold"), then once more on the same devpi ("rerun").

    ``after(scene, result)`` runs once the re-run is done, while that devpi still runs.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    scene = fresh_scene(workdir, upstream)
    try:
        upstream.clear_log()
        say(f"{name}: cold run")
        cold = with_server_cpu(scene.server, lambda: contender(scene, "cold"))
        cold_traffic = traffic(upstream)
        say(f"{name}: cold run exit {cold.returncode} in {cold.seconds:.1f} s")
        time.sleep(1)  # let devpi commit the last file it streamed
        upstream.clear_log()
        say(f"{name}: re-run")
        rerun = with_server_cpu(scene.server, lambda: contender(scene, "rerun"))
        rerun_traffic = traffic(upstream)
        say(f"{name}: re-run exit {rerun.returncode} in {rerun.seconds:.1f} s")
        result = Result(name, cold, rerun, cold_traffic, rerun_traffic)
        if after is not None:
            after(scene, result)
    finally:
        scene.server.stop()
    return result


def with_server_cpu(server: DevpiServer, action: Callable[[], Run]) -> Run:
    """``action()``, with the CPU time ``server`` spent meanwhile."""
    pid = server_pid(server)
    before = cpu_seconds(pid)
    result = action()
    result.server_cpu = cpu_seconds(pid) - before
    return result


def bench_loop(
    workdir: Path,
    upstream: Upstream,
    pip: Path,
    name: str = LOOP,
    requirements: Callable[[str, str], Path] = lambda _python, _platform: REQUIREMENTS,
    extra: Sequence[str] = (),
) -> Result:
    """The seed loop over the matrix; ``requirements(python, platform)``: each target's file."""
    dest, pip_cache, log = workdir / "wheelhouse", workdir / "pip-cache", workdir / "loop.log"

    def contender(scene: DevpiScene, _phase: str) -> Run:
        result = run_loop(pip, scene.simple_url, dest, pip_cache, log, BENCH.targets(), requirements, extra)
        if result.returncode:
            say(f"pip download failed:\n{log_tail(log)}")
        return result

    return cold_and_again(name, workdir, upstream, contender)


def bench_lock_loop(workdir: Path, upstream: Upstream, pip: Path) -> Result:
    """The seed loop over the lock's hash-pinned requirements, ``--no-deps`` (a lock is complete)."""
    requirements = write_pinned(workdir / "pinned")
    return bench_loop(workdir, upstream, pip, LOCK_LOOP, requirements, ["--no-deps"])


def bench_warmup(
    workdir: Path,
    upstream: Upstream,
    extra: Sequence[str] = (),
    inputs: Sequence[str] = ("-r", str(REQUIREMENTS)),
    name: str = WARMUP,
    floor: bool = False,
) -> Result:
    """``devpi warmup INPUTS``; with ``floor``, then time the requests a re-run cannot avoid."""
    xdg_cache, log = workdir / "xdg-cache", workdir / "warmup.log"
    reports: dict[str, Path] = {}

    def after(scene: DevpiScene, result: Result) -> None:
        if floor and result.ok:
            result.floor = probe_floor(scene, reports["rerun"])
            say(
                f"{name}: its {result.floor.pages} pages and {result.floor.probes} file probes alone:"
                f" {result.floor.sequential:.2f} s one after the other"
                f" (pages {result.floor.pages_sequential:.2f} s),"
                f" {result.floor.parallel:.2f} s on {result.floor.threads} threads"
            )

    def contender(scene: DevpiScene, phase: str) -> Run:
        reports[phase] = workdir / f"report-{phase}.json"
        argv = warmup_argv(scene.clientdir, inputs, BENCH, "--report", str(reports[phase]), *extra)
        result = measure(argv, warmup_env(xdg_cache), log)
        if result.returncode:
            say(f"devpi warmup failed:\n{log_tail(log)}")
        return result

    result = cold_and_again(name, workdir, upstream, contender, after)
    result.reports = reports
    return result


def bench_lock_warmup(workdir: Path, upstream: Upstream, extra: Sequence[str] = ()) -> Result:
    return bench_warmup(workdir, upstream, extra, ("--lock", str(LOCK)), LOCK_WARMUP, floor=True)


def run_contender(
    name: str, workdir: Path, upstream: Upstream, pip: Path, warmup_extra: Sequence[str]
) -> Result:
    """The contender ``name`` cold and again in ``workdir`` (``warmup_extra``: more devpi warmup options)."""
    if name == LOOP:
        return bench_loop(workdir, upstream, pip)
    if name == WARMUP:
        return bench_warmup(workdir, upstream, warmup_extra)
    if name == LOCK_LOOP:
        return bench_lock_loop(workdir, upstream, pip)
    return bench_lock_warmup(workdir, upstream, warmup_extra)
