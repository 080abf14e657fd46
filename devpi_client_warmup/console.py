"""Progress on the terminal: a line per target as it finishes, and a live status line."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import Callable

from . import report
from .index.files import FileState
from .matrix import Target
from .pipeline import TargetResult


class Console:
    """Target lines as targets finish, through ``write(line, ok)``; on a terminal also a live
    line (refreshed every second) naming the targets still resolving, how long each has taken
    so far and what its pip asks devpi for now."""

    def __init__(self, write: Callable[[str, bool], None], targets: int, *, live: bool, quiet: bool) -> None:
        self.write, self.targets, self.live, self.quiet = write, targets, live, quiet
        self.lock = threading.Lock()
        self.done_targets = self.fetched_files = self.fetched_bytes = 0
        self.resolving: dict[str, float] = {}  # target name -> when it started
        self.asking: dict[str, str] = {}  # target name -> what its pip asks for now
        self._stop = threading.Event()
        if live:
            threading.Thread(target=self._tick, daemon=True).start()

    def started(self, target: Target) -> None:
        with self.lock:
            self.resolving[target.name] = time.monotonic()
            self._status()

    def doing(self, target_name: str, what: str) -> None:
        with self.lock:  # shown at the next tick
            self.asking[target_name] = what

    def resolved(self, result: TargetResult) -> None:
        with self.lock:
            self.resolving.pop(result.target.name, None)
            self.asking.pop(result.target.name, None)
            self._status()

    def fetched(self, state: FileState) -> None:
        with self.lock:
            if state.fetched:
                self.fetched_files += 1
                self.fetched_bytes += state.size or 0
            self._status()

    def finished(self, result: TargetResult) -> None:
        with self.lock:
            self.done_targets += 1
            self._clear()
            if not (self.quiet and result.ok):
                self.write(report.target_line(result), result.ok)
            self._status()

    def close(self) -> None:
        with self.lock:
            self._clear()
            self._stop.set()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self.lock:
                self._status()

    def _status(self) -> None:
        if not self.live or self._stop.is_set():
            return
        now = time.monotonic()
        line = (
            f"{self.done_targets}/{self.targets} targets done, fetched {self.fetched_files} files"
            f" ({report.human_bytes(self.fetched_bytes)})"
        )
        if self.resolving:
            running = sorted(self.resolving.items(), key=lambda item: item[1])
            line += "; resolving " + ", ".join(
                f"{name} {now - since:.0f} s" + (f" ({self.asking[name]})" if name in self.asking else "")
                for name, since in running
            )
        width = shutil.get_terminal_size().columns - 1
        try:
            sys.stdout.write("\r\x1b[K" + (line if len(line) <= width else line[: width - 3] + "..."))
            sys.stdout.flush()
        except BrokenPipeError:
            self._stop.set()

    def _clear(self) -> None:
        if self.live and not self._stop.is_set():
            sys.stdout.write("\r\x1b[K")
            sys.stdout.flush()
