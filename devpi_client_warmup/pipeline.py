"""The warmup pipeline: resolve every target in parallel, then make devpi hold each unique file once.

A target's files start fetching as soon as its resolution is in; a file shared by several
targets is fetched once. Each target is reported as soon as its last file is settled.
"""

from __future__ import annotations

import functools
import hashlib
import json
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Protocol

import requests

from . import __version__
from .errors import FetchError
from .gateway import Gateway
from .index.access import IndexAccess, server_state
from .index.cache import Cache, Kind
from .index.files import FileState, Store
from .inputs.lock import Lock
from .inputs.requirements import Inputs
from .matrix import Target
from .problems import Problem, ProblemKind, Status, target_status
from .resolve.locked import select
from .resolve.pip import PipRun, build_metadata
from .resolve.resolution import Pick, Resolution
from .resolve.target import add_builds, resolve_target

_PROBES = 8  # cache probes at once (waiting on devpi, not on the CPU)


@dataclass(frozen=True)
class Options:
    dest: Path | None = None
    check: bool = False
    jobs: int = 4  # targets resolved at once (each a pip process: CPU and memory)
    downloads: int = 8  # files fetched at once (waiting on the network, not on the CPU)
    cache: Cache = field(default_factory=lambda: Cache(None))
    refuse_builds: bool = False


@dataclass
class TargetResult:
    """A target's resolution and the state of each file it needs."""

    resolution: Resolution
    files: list[FileState] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # --check: files devpi does not store
    checked: bool = False  # --check: nothing was fetched

    @property
    def target(self) -> Target:
        return self.resolution.target

    @property
    def problems(self) -> list[Problem]:
        name, found = self.target.name, []
        if self.resolution.error:
            kind = ProblemKind.UNKNOWN_PACKAGE if self.resolution.unknown_project else ProblemKind.UNRESOLVED
            found.append(Problem(kind, name, self.resolution.error))
        found += [Problem(ProblemKind.NOT_FETCHED, name, f.error, f.filename) for f in self.files if f.error]
        found += [
            Problem(ProblemKind.MISSING, name, f"{filename}: devpi does not store it", filename)
            for filename in self.missing
        ]
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def status(self) -> Status:
        return target_status(self.problems, checked=self.checked)

    @property
    def bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)


class Progress(Protocol):
    """What the pipeline tells as it goes (called from worker threads)."""

    def started(self, target: Target) -> None: ...

    def doing(self, target_name: str, what: str) -> None: ...

    def resolved(self, result: TargetResult) -> None: ...

    def fetched(self, state: FileState) -> None: ...

    def finished(self, result: TargetResult) -> None: ...


@dataclass
class Outcome:
    results: list[TargetResult]
    files: list[FileState]
    notes: list[str]
    problems: list[str]  # what devpi answered the gateway with, when that went wrong
    external: list[str]
    seconds: float
    extra: list[FileState] = field(default_factory=list)  # fetched while resolving, needed by no target


def run(
    targets: list[Target],
    inputs: Inputs,
    access: IndexAccess,
    options: Options,
    progress: Progress,
    lock: Lock | None = None,
) -> Outcome:
    """Warm (or with ``options.check`` only inspect) the index for every target.

    With a ``lock``, each target takes the locked files instead of resolving ``inputs``, and
    when devpi has not changed since this lock and matrix were last warmed completely, the
    run is settled without asking devpi anything more.
    """
    started = time.monotonic()
    memo = _LockRun(options.cache, targets, lock, access) if lock and not options.dest else None
    if memo is not None:
        replay = memo.replay(progress)
        if replay is not None:
            return replace(replay, seconds=time.monotonic() - started)
    outcome = _run(targets, inputs, access, options, progress, lock)
    outcome.seconds = time.monotonic() - started
    if memo is not None and all(result.ok for result in outcome.results):
        memo.keep(outcome)
    return outcome


def _run(
    targets: list[Target],
    inputs: Inputs,
    access: IndexAccess,
    options: Options,
    progress: Progress,
    lock: Lock | None,
) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="devpi-warmup-") as tmp:
        workdir = Path(tmp)
        store = Store(access, workdir, options.cache)
        results: list[TargetResult] = []
        fetches: dict[str, Future[None]] = {}
        guard = threading.Lock()
        interrupted = threading.Event()
        with (
            Gateway(
                access,
                store,
                workdir,
                check=options.check,
                refuse_builds=options.refuse_builds,
                watch=progress.doing,
            ) as gateway,
            ThreadPoolExecutor(options.downloads, thread_name_prefix="fetch") as fetch_pool,
            ThreadPoolExecutor(_PROBES, thread_name_prefix="probe") as probe_pool,
        ):
            netrc = workdir / "netrc"
            netrc.touch(mode=0o600)
            netrc.write_text(gateway.netrc())
            pip = PipRun(gateway, netrc, store)
            gateway.builder = functools.partial(build_metadata, pip, workdir)
            if lock is None:  # every target's pip starts with these pages
                gateway.prefetch(line.requirement.name for line in inputs.requirements)

            def fetch_once(state: FileState) -> Future[None]:
                with guard:
                    if state.url not in fetches:
                        fetches[state.url] = fetch_pool.submit(store.ensure, state, options.dest)
                        fetches[state.url].add_done_callback(lambda future: fetched(state, future))
                    return fetches[state.url]

            def fetched(state: FileState, future: Future[None]) -> None:
                if future.exception() is not None:  # a bug, not a fault: still name the file
                    state.error = f"{state.filename}: {future.exception()!r}"
                progress.fetched(state)

            def settle(index: int, target: Target) -> None:
                started = time.monotonic()
                if not interrupted.is_set():
                    progress.started(target)
                try:
                    where = workdir / f"target-{index}"
                    if lock is None:
                        resolution = resolve_target(target, inputs, pip, where, store)
                    else:  # a lock: no resolution, except for what builds its sdists
                        resolution = add_builds(select(target, lock, store), inputs, pip, where, store)
                        resolution.seconds = time.monotonic() - started
                except Exception as exc:  # noqa: BLE001 - one target's bug must not hide the others
                    resolution = Resolution(target, error=f"unexpected error: {exc!r}")
                pip_error = resolution.pip_output or resolution.error or ""
                if resolution.error and not resolution.unknown_project:
                    resolution.error = access.redact(gateway.explain(pip_error, resolution.error))
                urls = [pick.url for pick in resolution.picks]
                result = TargetResult(
                    resolution, list(probe_pool.map(store.state, urls)), checked=options.check
                )
                for pick, state in zip(resolution.picks, result.files):
                    state.sha256 = state.sha256 or pick.sha256
                if interrupted.is_set():
                    return
                progress.resolved(result)
                if options.check:
                    result.missing = [f.filename for f in result.files if not f.cached_before]
                    result.missing += [n for n in gateway.failed_files(pip_error) if n not in result.missing]
                    for state in result.files:
                        state.size = state.size or store.size(state)
                    _finish(result)
                    return
                pending = [fetch_once(state) for state in result.files]
                countdown = [len(pending)]

                def one_done(_: Future[None]) -> None:
                    with guard:
                        countdown[0] -= 1
                        last = countdown[0] == 0
                    if last:
                        _finish(result)

                if not pending:
                    _finish(result)
                for future in pending:
                    future.add_done_callback(one_done)

            def _finish(result: TargetResult) -> None:
                with guard:
                    results.append(result)
                if not interrupted.is_set():
                    progress.finished(result)

            with ThreadPoolExecutor(options.jobs, thread_name_prefix="resolve") as resolve_pool:
                if lock is not None:  # every target walks the same pages: read them all at once
                    pages = {locked.name for locked in lock.packages}
                    list(fetch_pool.map(_read_quietly(store), sorted(pages)))
                try:
                    for future in [resolve_pool.submit(settle, i, t) for i, t in enumerate(targets)]:
                        future.result()
                except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop pip, say nothing more about targets
                    interrupted.set()
                    pip.children.stop()
                    resolve_pool.shutdown(wait=False, cancel_futures=True)
                    fetch_pool.shutdown(wait=False, cancel_futures=True)
                    raise
        notes = [note for result in results for note in result.resolution.notes]
        order = {target: index for index, target in enumerate(targets)}
        results.sort(key=lambda result: order[result.target])
        unique = list({f.url: f for result in results for f in result.files}.values())
        needed = {f.url for f in unique}
        return Outcome(
            results,
            unique,
            list(dict.fromkeys(notes)),
            list(dict.fromkeys(gateway.errors)),
            sorted(gateway.external),
            0.0,  # set by run()
            extra=[f for f in store.fetched_files() if f.url not in needed],
        )


def _read_quietly(store: Store) -> Callable[[str], object]:
    """Read a project page ahead; a failure shows again (and is reported) when a target needs it."""

    def read(project: str) -> object:
        try:
            return store.project_files(project)
        except (FetchError, requests.RequestException, ValueError) as exc:
            return exc

    return read


class _LockRun:
    """The last complete warmup of a lock and matrix, valid while devpi's serial stays the same."""

    def __init__(self, cache: Cache, targets: list[Target], lock: Lock, access: IndexAccess) -> None:
        what = {
            "tool": __version__,
            "index": access.simple_url,
            "targets": [target.name for target in targets],
            "lock": [(p.name, p.version, str(p.marker), sorted(p.hashes.items()), sorted(p.any_hashes))
                     for p in lock.packages],
            "edges": {t.name: sorted(lock.graph.reachable(t.marker_environment)) for t in targets}
                     if lock.graph is not None else None,  # uv.lock: what each target walks to
        }  # fmt: skip
        key = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
        self.cache, self.key = cache, key
        self.targets = targets
        self.access = access

    def replay(self, progress: Progress) -> Outcome | None:
        """The kept outcome, every file still stored, if devpi is where that run left it."""
        data = self.cache.get(Kind.LOCK_RUN, self.key)
        if data is None:
            return None
        state = server_state(self.access)
        try:
            kept = json.loads(data)
            if state is None or kept["server"] != state:
                return None
            results = [self._result(target, kept["targets"][target.name]) for target in self.targets]
        except (ValueError, KeyError, TypeError):
            return None  # a damaged entry is a miss
        for result in results:
            progress.resolved(result)
            progress.finished(result)
        note = f"devpi has not changed since this lock was last warmed completely (serial {state.split(':')[-1]})"
        unique = list({f.url: f for result in results for f in result.files}.values())
        return Outcome(results, unique, [note], [], [], 0.0)

    @staticmethod
    def _result(target: Target, files: list[dict[str, Any]]) -> TargetResult:
        picks = [Pick(f["project"], f["version"], f["url"], f["sha256"], f["role"]) for f in files]
        states = [
            FileState(p.url, p.sha256, cached_before=True, size=f["size"]) for p, f in zip(picks, files)
        ]
        return TargetResult(Resolution(target, picks=picks, resolved_by="lock"), states)

    def keep(self, outcome: Outcome) -> None:
        state = server_state(self.access)
        if state is None:
            return
        targets = {
            result.target.name: [
                {"project": p.name, "version": p.version, "url": p.url, "sha256": f.sha256, "role": p.role,
                 "size": f.size}
                for p, f in zip(result.resolution.picks, result.files)
            ]
            for result in outcome.results
        }  # fmt: skip
        self.cache.put(Kind.LOCK_RUN, self.key, json.dumps({"server": state, "targets": targets}).encode())
