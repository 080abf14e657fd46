"""The warmup pipeline: resolve every target in parallel, then make devpi hold each unique file once.

A target's files start fetching as soon as its resolution is in; a file shared by several
targets is fetched once. Each target is reported as soon as its last file is settled.
"""

from __future__ import annotations

import functools
import itertools
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Protocol

import requests
from packaging.tags import sys_tags

from . import __version__
from ._malloc import limit_arenas
from .errors import FetchError
from .gateway import Gateway
from .index.access import IndexAccess, server_state
from .index.cache import Cache, Kind, key_of
from .index.downloads import Downloads
from .index.files import Files, FileState
from .index.pages import ProjectPages
from .index.sdist import SdistFacts
from .inputs.lock import Lock
from .inputs.requirements import Inputs
from .matrix import Target
from .problems import Problem, ProblemKind, Status, target_status
from .resolve.locked import select
from .resolve.pip import PipRun, build_metadata
from .resolve.resolution import Pick, Resolution, ResolvedBy, Role
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
    states: dict[str, FileState] = field(default_factory=dict)  # by URL: the state of each pick's file
    missing: list[str] = field(default_factory=list)  # --check: files devpi does not store
    checked: bool = False  # --check: nothing was fetched

    @property
    def target(self) -> Target:
        return self.resolution.target

    @property
    def picks(self) -> list[tuple[Pick, FileState]]:
        """Each file the target needs, as pip (or the lock) picked it, with its state."""
        return [(pick, self.states[pick.url]) for pick in self.resolution.picks]

    @property
    def files(self) -> list[FileState]:
        return [self.states[pick.url] for pick in self.resolution.picks]

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
    limit_arenas()
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
    with _run_folder() as workdir:
        index = _Index.open(access, workdir, options.cache)
        with (
            Gateway(
                access,
                index.files,
                index.downloads,
                index.sdists,
                workdir,
                check=options.check,
                refuse_builds=options.refuse_builds,
                pip_checks_hashes=any(line.hashes for line in inputs.requirements + inputs.constraints),
                pip_may_refuse_wheels=any(option == "--no-binary" for option, _ in inputs.formats),
                reachable=frozenset(itertools.chain(sys_tags(), *(target.tags for target in targets))),
                watch=progress.doing,
            ) as gateway,
            ThreadPoolExecutor(options.downloads, thread_name_prefix="fetch") as fetch_pool,
            ThreadPoolExecutor(_PROBES, thread_name_prefix="probe") as probe_pool,
        ):
            netrc = workdir / "netrc"
            netrc.touch(mode=0o600)
            netrc.write_text(gateway.netrc())
            pip = PipRun(gateway, netrc, options.cache)
            gateway.builder = functools.partial(build_metadata, pip, workdir)
            warmup = _Warmup(
                inputs, lock, options, progress, workdir, index, gateway, pip, fetch_pool, probe_pool
            )
            with ThreadPoolExecutor(options.jobs, thread_name_prefix="resolve") as resolve_pool:
                if lock is None:  # every target's pip starts with these pages
                    gateway.prefetch(line.requirement.name for line in inputs.requirements)
                else:  # every target walks the same pages: read them all at once
                    pages = {locked.name for locked in lock.packages}
                    list(fetch_pool.map(_read_quietly(index.pages), sorted(pages)))
                try:
                    for future in [resolve_pool.submit(warmup.settle, i, t) for i, t in enumerate(targets)]:
                        future.result()
                except KeyboardInterrupt:  # Ctrl-C or SIGTERM: stop pip, say nothing more about targets
                    warmup.interrupted.set()
                    pip.children.stop()
                    resolve_pool.shutdown(wait=False, cancel_futures=True)
                    fetch_pool.shutdown(wait=False, cancel_futures=True)
                    raise
        return warmup.outcome(targets)


@contextmanager
def _run_folder() -> Iterator[Path]:
    """The run's own folder (netrc, spool, pages, pip's files), removed at the end. After an
    interrupt, a thread still at work may write into it while it is removed: it is removed
    again, and then stays gone (nothing in the run makes the folders above its own)."""
    path = Path(tempfile.mkdtemp(prefix="devpi-warmup-"))
    try:
        yield path
    finally:
        try:
            shutil.rmtree(path)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class _Index:
    """The run's parts of the index: its files, their bodies, its sdists and its JSON pages."""

    files: Files
    downloads: Downloads
    sdists: SdistFacts
    pages: ProjectPages

    @classmethod
    def open(cls, access: IndexAccess, workdir: Path, cache: Cache) -> _Index:
        files = Files(access.http, cache)
        downloads = Downloads(access, files, workdir / "spool")
        pages = ProjectPages(access.simple_url, access.http, files.learn_page)
        return cls(files, downloads, SdistFacts(files, downloads), pages)


class _Warmup:
    """One run over the targets: each is resolved (or taken from the lock), its files probed,
    then fetched (each unique file once, shared between targets) or, with --check, only
    compared with what devpi stores; a target is reported when its last file is settled."""

    def __init__(
        self,
        inputs: Inputs,
        lock: Lock | None,
        options: Options,
        progress: Progress,
        workdir: Path,
        index: _Index,
        gateway: Gateway,
        pip: PipRun,
        fetch_pool: ThreadPoolExecutor,
        probe_pool: ThreadPoolExecutor,
    ) -> None:
        self.inputs, self.lock, self.options, self.progress = inputs, lock, options, progress
        self.workdir, self.index, self.gateway, self.pip = workdir, index, gateway, pip
        self.fetch_pool, self.probe_pool = fetch_pool, probe_pool
        self.results: list[TargetResult] = []
        self.fetches: dict[str, Future[None]] = {}  # file URL -> its one download
        self.waiting: dict[int, int] = {}  # id of a target's result -> its files not settled yet
        self.guard = threading.Lock()
        self.interrupted = threading.Event()

    def settle(self, index: int, target: Target) -> None:
        """Resolve ``target``, then check or fetch its files."""
        if not self.interrupted.is_set():
            self.progress.started(target)
        resolution = self._resolve(index, target)
        pip_error = resolution.pip_output or resolution.error or ""
        if resolution.error and not resolution.unknown_project:
            explained = self.gateway.explain(pip_error, resolution.error)
            resolution.error = self.gateway.access.redact(explained)
        urls = list(dict.fromkeys(pick.url for pick in resolution.picks))
        states = dict(zip(urls, self.probe_pool.map(self.index.files.state, urls)))
        result = TargetResult(resolution, states, checked=self.options.check)
        for pick, state in result.picks:
            state.sha256 = state.sha256 or pick.sha256
        if self.interrupted.is_set():
            return
        self.progress.resolved(result)
        if self.options.check:
            self._check(result, pip_error)
        else:
            self._fetch(result)

    def _resolve(self, index: int, target: Target) -> Resolution:
        started = time.monotonic()
        where = self.workdir / f"target-{index}"
        try:
            where.mkdir()
            if self.lock is None:
                return resolve_target(
                    target, self.inputs, self.pip, where, self.index.files, self.index.sdists
                )
            # a lock: no resolution, except for what builds its sdists
            resolution = add_builds(
                select(target, self.lock, self.index.pages),
                self.inputs,
                self.pip,
                where,
                self.index.files,
                self.index.sdists,
            )
            resolution.seconds = time.monotonic() - started
            return resolution
        except Exception as exc:  # noqa: BLE001 - one target's bug must not hide the others
            return Resolution(target, error=f"unexpected error: {exc!r}")

    def _check(self, result: TargetResult, pip_error: str) -> None:
        """--check: which files devpi lacks (nothing is fetched)."""
        result.missing = [f.filename for f in result.states.values() if not f.cached_before]
        result.missing += [n for n in self.gateway.failed_files(pip_error) if n not in result.missing]
        for state in result.states.values():
            state.size = state.size or self.index.downloads.size(state)
        self._finish(result)

    def _fetch(self, result: TargetResult) -> None:
        """Fetch the target's files; it is finished when the last one is settled."""
        if not result.states:
            self._finish(result)
            return
        with self.guard:
            self.waiting[id(result)] = len(result.states)
        for state in result.states.values():
            self._fetch_once(state).add_done_callback(functools.partial(self._settled, result))

    def _fetch_once(self, state: FileState) -> Future[None]:
        with self.guard:
            if state.url not in self.fetches:
                self.fetches[state.url] = self.fetch_pool.submit(
                    self.index.downloads.ensure, state, self.options.dest
                )
                self.fetches[state.url].add_done_callback(lambda future: self._fetched(state, future))
            return self.fetches[state.url]

    def _fetched(self, state: FileState, future: Future[None]) -> None:
        if future.exception() is not None:  # a bug, not a fault: still name the file
            state.error = f"{state.filename}: {future.exception()!r}"
        self.progress.fetched(state)

    def _settled(self, result: TargetResult, _: Future[None]) -> None:
        with self.guard:
            self.waiting[id(result)] -= 1
            last = self.waiting[id(result)] == 0
        if last:
            self._finish(result)

    def _finish(self, result: TargetResult) -> None:
        with self.guard:
            self.results.append(result)
        if not self.interrupted.is_set():
            self.progress.finished(result)

    def outcome(self, targets: list[Target]) -> Outcome:
        """Every target's result in the order of ``targets``, the unique files, and what is apart."""
        order = {target: index for index, target in enumerate(targets)}
        results = sorted(self.results, key=lambda result: order[result.target])
        notes = [note for result in results for note in result.resolution.notes]
        unique = list({f.url: f for result in results for f in result.files}.values())
        needed = {f.url for f in unique}
        return Outcome(
            results,
            unique,
            list(dict.fromkeys(notes)),
            list(dict.fromkeys(self.gateway.errors)),
            sorted(self.gateway.external),
            0.0,  # set by run()
            extra=[f for f in self.index.files.fetched_files() if f.url not in needed],
        )


def _read_quietly(pages: ProjectPages) -> Callable[[str], object]:
    """Read a project page ahead; a failure shows again (and is reported) when a target needs it."""

    def read(project: str) -> object:
        try:
            return pages.project_files(project)
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
        self.cache, self.key = cache, key_of(what)
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
        picks = [Pick(f["project"], f["version"], f["url"], f["sha256"], Role(f["role"])) for f in files]
        states = {
            p.url: FileState(p.url, p.sha256, cached_before=True, size=f["size"])
            for p, f in zip(picks, files)
        }
        return TargetResult(Resolution(target, picks=picks, resolved_by=ResolvedBy.LOCK), states)

    def keep(self, outcome: Outcome) -> None:
        state = server_state(self.access)
        if state is None:
            return
        targets = {
            result.target.name: [
                {"project": p.name, "version": p.version, "url": p.url, "sha256": f.sha256, "role": p.role.value,
                 "size": f.size}
                for p, f in result.picks
            ]
            for result in outcome.results
        }  # fmt: skip
        self.cache.put(Kind.LOCK_RUN, self.key, json.dumps({"server": state, "targets": targets}).encode())
