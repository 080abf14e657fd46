"""Run a command and measure its process tree with psutil: wall time, CPU seconds, peak RSS.

Linux (or another system with ``os.waitid``).  Memory is sampled every ``POLL_SECONDS`` over the
started process and all its descendants (``psutil.Process.children(recursive=True)``); a peak
shorter than a sample period can be missed.  CPU seconds are read once the started process has
exited but before it is reaped: its own user + system time, plus ``children_user`` and
``children_system``, the kernel's sum over every descendant that was waited for (pip's build
subprocesses, the warmup's pip processes), so children that exited long before still count.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

POLL_SECONDS = 0.05
TIMEOUT = 3600.0


@dataclass
class Peaks:
    """Peak resident memory of a process tree in bytes, the largest seen in one sample."""

    main: int = 0  # of the started process
    child: int = 0  # of any one descendant
    tree: int = 0  # of the sum over the tree

    def merge(self, other: Peaks) -> Peaks:
        return Peaks(max(self.main, other.main), max(self.child, other.child), max(self.tree, other.tree))


@dataclass
class Run:
    """One measured command, or several run one after the other (``then``)."""

    returncode: int = 0
    seconds: float = 0.0
    peaks: Peaks = field(default_factory=Peaks)
    cpu: float = 0.0  # user + system seconds of the process tree
    main_cpu: float = 0.0  # ... of the started process alone
    server_cpu: float = 0.0  # user + system seconds devpi-server spent meanwhile
    commands: int = 0

    def then(self, other: Run) -> Run:
        return Run(
            self.returncode or other.returncode,
            self.seconds + other.seconds,
            self.peaks.merge(other.peaks),
            self.cpu + other.cpu,
            self.main_cpu + other.main_cpu,
            self.server_cpu + other.server_cpu,
            self.commands + other.commands,
        )


class Monitor(threading.Thread):
    """Samples the resident memory of a process tree every POLL_SECONDS until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(name=f"monitor-{pid}", daemon=True)
        self.process = psutil.Process(pid)
        self.peaks = Peaks()
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            self.sample()
            self._stopped.wait(POLL_SECONDS)

    def sample(self) -> None:
        main = rss(self.process)
        try:
            descendants = self.process.children(recursive=True)
        except psutil.Error:  # exited
            descendants = []
        sizes = [rss(child) for child in descendants]
        peaks = self.peaks
        peaks.main = max(peaks.main, main)
        peaks.child = max([peaks.child, *sizes])
        peaks.tree = max(peaks.tree, main + sum(sizes))

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def rss(process: psutil.Process) -> int:
    """Resident bytes of ``process``; 0 once it has exited."""
    try:
        return int(process.memory_info().rss)
    except psutil.Error:
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of the running process ``pid`` alone (0 if it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def measure(argv: Sequence[str], env: dict[str, str], log: Path, timeout: float = TIMEOUT) -> Run:
    """Run ``argv`` (output appended to ``log``; killed after ``timeout`` s): its exit code and figures."""
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        started = time.monotonic()
        proc = subprocess.Popen(list(argv), env=env, stdout=out, stderr=subprocess.STDOUT)
        monitor = Monitor(proc.pid)
        monitor.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            os.waitid(
                os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT
            )  # exited, not reaped: its times stay readable
            seconds = time.monotonic() - started
            times = monitor.process.cpu_times()
            returncode = proc.wait()
        finally:
            timer.cancel()
            monitor.stop()
    main_cpu = times.user + times.system
    return Run(
        returncode,
        seconds,
        monitor.peaks,
        cpu=main_cpu + times.children_user + times.children_system,
        main_cpu=main_cpu,
        commands=1,
    )
