"""Benchmark ``devpi warmup`` against the seed's ``pip download`` loop.

Usage (from the repository root; python3.11 must be on PATH, for the loop's venv)::

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

The first run fills ``~/.cache/devpi-warmup-bench/files`` from the real PyPI (a throwaway
devpi-server mirroring it; both requirements contenders run against it with their files kept
there, then ``devpi warmup --lock pylock.toml --dest`` for files of the lock still missing; that
takes a few minutes) and later runs reuse it; delete the folder to refill.  That folder is then
served as a local simple index, and each contender runs against its own fresh devpi-server whose
mirror index points at it: once cold (devpi stores nothing) and once more (everything is cached,
the contender's own caches are kept, as a user re-running it would have them).  Printed: wall
time, peak RSS (kernel ``VmHWM`` of the started process and of its descendants sampled every
50 ms, and the largest sum of ``VmRSS`` over the process tree in one sample), CPU seconds, the
bytes devpi fetched from the upstream, the files each contender made devpi store, whether the
project's targets are met (requirements: cold >= 2.5x, re-run >= 10x faster than the loop; lock:
re-run >= 30x faster than the pinned loop; peak RSS < 150 MB), and where devpi warmup's time went
(its --report JSON: ``resolved_by``, per-target ``seconds``, ``timings``).  ``--repeat N`` runs
each contender N times (medians are shown), ``--keep`` keeps the temporary directories (logs,
--report JSON), ``--jobs N`` is passed on to ``devpi warmup``, ``--scenario`` runs one scenario
only.  This is a report: the exit code is 1 only if a contender failed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import tomllib
from packaging.requirements import Requirement

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from tests.support.devpi import (
    ROOT_PASSWORD,
    DevpiClient,
    DevpiScene,
    DevpiServer,
    clean_env,
    executable,
    free_port,
    run,
    setup_scene,
)
from tests.support.upstream import Upstream

PYTHONS = ("3.10", "3.12", "3.13")
PLATFORMS = ("manylinux2014_x86_64", "win_amd64", "macosx_11_0_arm64")
REQUIREMENTS = HERE / "requirements.txt"
LOCK_REQUIREMENTS = HERE / "lock-requirements.txt"  # the lock's inputs (see make_lock.py)
LOCK = HERE / "pylock.toml"  # the lock scenario's lock, made by make_lock.py
PINNED = HERE / "pylock-requirements.txt"  # the same lock exported as hash-pinned requirements
BENCH_CACHE = Path.home() / ".cache" / "devpi-warmup-bench"
FILES = BENCH_CACHE / "files"
STAMP = BENCH_CACHE / "filled.json"
LOCK_STAMP = BENCH_CACHE / "lock-filled.json"
QUARANTINE = BENCH_CACHE / "unsupported"
LOOP_PYTHON = "python3.11"
PYENV_VERSIONS = "3.11.7:3.9.18:3.10.13:3.12.1:3.13.0"
POLL_SECONDS = 0.05
TIMEOUT = 3600.0
TARGET_COLD = 2.5
TARGET_RERUN = 10.0
TARGET_RSS_MB = 150.0
TARGET_LOCK_RERUN = 30.0
LOOP, WARMUP = "pip download loop", "devpi warmup"
LOCK_LOOP, LOCK_WARMUP = "pinned pip loop", "warmup --lock"


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# -- measuring a process tree ---------------------------------------------------------------


@dataclass
class Peaks:
    """Peak memory of a process tree in kB."""

    main_kb: int = 0  # VmHWM of the started process
    child_kb: int = 0  # largest VmHWM of any descendant seen
    tree_kb: int = 0  # largest sum of VmRSS over the tree in one sample

    def merge(self, other: Peaks) -> Peaks:
        return Peaks(
            max(self.main_kb, other.main_kb),
            max(self.child_kb, other.child_kb),
            max(self.tree_kb, other.tree_kb),
        )


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in kB; zeros once it is gone."""
    rss = hwm = 0
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as stream:
            for line in stream:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return rss, hwm


def children(pid: int) -> list[int]:
    """Child processes of ``pid`` (of every thread of it)."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as stream:
                found += [int(word) for word in stream.read().split()]
        except (OSError, ValueError):
            pass
    return found


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children(child)
    return found


class Monitor(threading.Thread):
    """Samples the memory of a process tree every POLL_SECONDS."""

    def __init__(self, pid: int) -> None:
        super().__init__(name=f"monitor-{pid}", daemon=True)
        self.pid = pid
        self.peaks = Peaks()
        self.main_cpu = 0.0  # CPU seconds of the started process at the last sample
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            self.sample()
            self._stopped.wait(POLL_SECONDS)

    def sample(self) -> None:
        rss, hwm = memory_kb(self.pid)
        self.main_cpu = max(self.main_cpu, cpu_seconds(self.pid))
        peaks, tree = self.peaks, rss
        peaks.main_kb = max(peaks.main_kb, hwm)
        for child in descendants(self.pid):
            child_rss, child_hwm = memory_kb(child)
            tree += child_rss
            peaks.child_kb = max(peaks.child_kb, child_hwm)
        peaks.tree_kb = max(peaks.tree_kb, tree)

    def stop(self) -> None:
        self._stopped.set()
        self.join()


@dataclass
class Run:
    """One measured command, or several run one after the other."""

    returncode: int = 0
    seconds: float = 0.0
    peaks: Peaks = field(default_factory=Peaks)
    cpu: float = 0.0  # user + system seconds of the process tree (wait4)
    main_cpu: float = 0.0  # ... of the started process alone (its /proc stat once it has exited)
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


def measure(argv: Sequence[str], env: dict[str, str], log: Path, timeout: float = TIMEOUT) -> Run:
    """Run ``argv`` (output appended to ``log``): wall time, exit code, peak memory."""
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
            # exited but not reaped yet: its /proc/PID/stat holds its own final CPU times
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            main_cpu = cpu_seconds(proc.pid)
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            monitor.stop()
        seconds = time.monotonic() - started
    # wait4's ru_maxrss is not used: on exec Linux folds the forking process's (this one's)
    # high-water mark into it.  Its CPU times are the tree's own (the process and the children it waited for).
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(
        proc.returncode,
        seconds,
        monitor.peaks,
        usage.ru_utime + usage.ru_stime,
        max(main_cpu, monitor.main_cpu),
        0.0,
        1,
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stream:
            fields = stream.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_pid(server: DevpiServer) -> int:
    proc = getattr(server, "_proc", None)
    return proc.pid if proc is not None else 0


def log_tail(log: Path, lines: int = 30) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


# -- the contenders' command lines ----------------------------------------------------------


def matrix_options() -> list[str]:
    options = ["--python", ",".join(PYTHONS)]
    for platform in PLATFORMS:
        options += ["--platform", platform]
    return options


def warmup_argv(clientdir: Path, *extra: str, inputs: Sequence[str] = ("-r", str(REQUIREMENTS))) -> list[str]:
    """``devpi warmup INPUTS <matrix> EXTRA`` (INPUTS: ``-r requirements.txt``) with its own client state."""
    return [
        executable("devpi"), "--clientdir", str(clientdir),
        "warmup", *inputs, *matrix_options(), *extra,
    ]  # fmt: skip


def lock_inputs() -> list[str]:
    return ["--lock", str(LOCK)]


def warmup_env(xdg_cache: Path) -> dict[str, str]:
    xdg_cache.mkdir(parents=True, exist_ok=True)
    return clean_env(XDG_CACHE_HOME=str(xdg_cache))


def make_pip(where: Path) -> Path:
    """The seed's venv: ``python3.11 -m venv`` and ``pip install -U pip``; its pip script."""
    env = clean_env()
    run([LOOP_PYTHON, "-m", "venv", str(where)], env=env, timeout=300)
    pip = where / "bin" / "pip"
    run([str(pip), "install", "-U", "pip"], env=env, timeout=600)
    version = run([str(pip), "--version"], env=env).stdout.split()[1]
    say(f"seed loop venv: {LOOP_PYTHON} with pip {version}")
    return pip


def loop_env(pip_cache: Path) -> dict[str, str]:
    """clean_env with pip's own cache in ``pip_cache`` (clean_env turns it off)."""
    env = clean_env(PIP_CACHE_DIR=str(pip_cache))
    env.pop("PIP_NO_CACHE_DIR", None)
    return env


def loop_argv(
    pip: Path,
    index_url: str,
    dest: Path,
    platform: str,
    python: str,
    requirements: Path = REQUIREMENTS,
    extra: Sequence[str] = (),
) -> list[str]:
    """One ``pip download`` of the seed script (``--python-version 310`` as it spells it).

    ``extra``: more pip options (``--no-deps`` for the pinned requirements of a lock).
    """
    nodot = python.replace(".", "")
    return [
        str(pip), "download", "--disable-pip-version-check",
        "--index-url", index_url,
        "--platform", platform,
        "--python-version", nodot,
        "--implementation", "cp",
        "--abi", f"cp{nodot}",
        "--only-binary=:all:",
        "--dest", str(dest),
        *extra,
        "-r", str(requirements),
    ]  # fmt: skip


def run_loop(
    pip: Path,
    index_url: str,
    dest: Path,
    pip_cache: Path,
    log: Path,
    requirements: Callable[[str, str], Path] = lambda _platform, _python: REQUIREMENTS,
    extra: Sequence[str] = (),
) -> Run:
    """The seed's loop: every platform, every Python, one after the other; stops at a failure.

    ``requirements(platform, python)``: the requirements file of that target.
    """
    total = Run()
    for platform in PLATFORMS:
        for python in PYTHONS:
            argv = loop_argv(pip, index_url, dest, platform, python, requirements(platform, python), extra)
            total = total.then(measure(argv, loop_env(pip_cache), log))
            if total.returncode:
                return total
    return total


# -- the file cache (the local upstream) ----------------------------------------------------


def fill_stamp() -> dict[str, Any]:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    return {"requirements_sha256": digest, "pythons": list(PYTHONS), "platforms": list(PLATFORMS)}


def cache_is_filled() -> bool:
    try:
        stamp = json.loads(STAMP.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(stamp == fill_stamp() and FILES.is_dir() and any(FILES.iterdir()))


def pypi_client(workdir: Path) -> tuple[DevpiServer, DevpiClient, str]:
    """A throwaway devpi-server whose root/pypi mirrors PyPI, with bench/pypi (bases=root/pypi) in use."""
    workdir.mkdir(parents=True, exist_ok=True)
    serverdir = workdir / "fill-server"
    run([executable("devpi-init"), "--serverdir", str(serverdir)], timeout=600)
    server = DevpiServer(serverdir, free_port())
    server.start()
    client = DevpiClient(workdir / "fill-client", server)
    client.use(server.url)
    client.login("root", ROOT_PASSWORD)
    client.create_user("bench", "bench-pw-1", "bench@example.invalid")
    client.login("bench", "bench-pw-1")
    client.create_index("bench/pypi", "bases=root/pypi")
    client.use(f"{server.url}/bench/pypi")
    simple_url = f"{server.url}/bench/pypi/+simple/"
    wait_for_mirror(simple_url)
    return server, client, simple_url


def wait_for_mirror(simple_url: str, timeout: float = 300) -> None:
    """Wait until devpi answers a project page of the PyPI mirror.

    A fresh root/pypi first loads PyPI's list of projects; until it has, devpi can answer
    404 "project does not exist" for a project page (after ~10 s).
    """
    deadline, first = time.monotonic() + timeout, True
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            status = requests.get(f"{simple_url}pip/", timeout=120).status_code
        except requests.RequestException as exc:
            status, detail = 0, str(exc)
        else:
            detail = ""
        if status == 200:
            return
        if first:
            say(
                f"  fresh root/pypi answered {status or detail} after {time.monotonic() - started:.1f} s; waiting"
            )
            first = False
        time.sleep(2)
    raise SystemExit(f"the PyPI mirror of the throwaway devpi-server did not answer within {timeout:.0f} s")


def fill_cache(workdir: Path, pip: Path) -> None:
    """Fill FILES with what both contenders fetch for the matrix from the real PyPI."""
    FILES.mkdir(parents=True, exist_ok=True)
    log = workdir / "fill.log"
    say(f"filling {FILES} from PyPI through a throwaway devpi-server (log: {log})")
    server, client, simple_url = pypi_client(workdir)
    try:
        warm = measure(
            warmup_argv(
                client.clientdir, "--dest", str(FILES), "--report", str(workdir / "fill-report.json")
            ),
            warmup_env(workdir / "fill-xdg-cache"),
            log,
        )
        say(f"  devpi warmup --dest: exit {warm.returncode} in {warm.seconds:.1f} s")
        loop = run_loop(pip, simple_url, FILES, workdir / "fill-pip-cache", log)
        say(f"  pip download loop --dest: exit {loop.returncode} in {loop.seconds:.1f} s")
    finally:
        server.stop()
    quarantine_unsupported()
    if warm.returncode or loop.returncode:
        raise SystemExit(f"filling the file cache failed:\n{log_tail(log)}\n{server.log_tail()}")
    STAMP.write_text(json.dumps(fill_stamp(), indent=2) + "\n", encoding="utf-8")


def quarantine_unsupported() -> None:
    """Move files the test Upstream cannot serve (not .whl / .tar.gz) out of FILES."""
    for path in sorted(FILES.iterdir()):
        if path.is_file() and not path.name.endswith((".whl", ".tar.gz")):
            QUARANTINE.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), QUARANTINE / path.name)
            say(f"  moved {path.name} to {QUARANTINE} (the local upstream serves only .whl and .tar.gz)")


# marker variables of the matrix's platforms: sys_platform, platform_system, os_name, platform_machine
PLATFORM_MARKERS = {
    "manylinux2014_x86_64": ("linux", "Linux", "posix", "x86_64"),
    "win_amd64": ("win32", "Windows", "nt", "AMD64"),
    "macosx_11_0_arm64": ("darwin", "Darwin", "posix", "arm64"),
}


def marker_environment(platform: str, python: str) -> dict[str, str]:
    sys_platform, system, os_name, machine = PLATFORM_MARKERS[platform]
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "os_name": os_name,
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": system,
        "platform_version": "",
        "python_full_version": f"{python}.0",
        "python_version": python,
        "sys_platform": sys_platform,
    }


def pinned_entries() -> list[tuple[Requirement, list[str]]]:
    """The hash-pinned requirements of the lock (PINNED): each requirement with its ``--hash`` options."""
    text = PINNED.read_text(encoding="utf-8").replace("\\\n", " ")
    entries = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement, *hashes = line.split(" --hash=")
            entries.append((Requirement(requirement), [f"--hash={h.strip()}" for h in hashes]))
    return entries


def write_pinned(where: Path) -> Callable[[str, str], Path]:
    """PINNED narrowed to each target (its markers evaluated for the target, as pip on it would).

    The seed loop's pip would evaluate them for the Python running it (3.11, Linux): that skips
    ``colorama; sys_platform == 'win32'`` for Windows and picks ``multidict==7.1.0;
    python_full_version < '3.12'``, which has no cp312/cp313 wheel, for every target.
    """
    where.mkdir(parents=True, exist_ok=True)
    entries = pinned_entries()
    for platform in PLATFORMS:
        for python in PYTHONS:
            environment = marker_environment(platform, python)
            lines = [
                f"{requirement.name}{requirement.specifier} {' '.join(hashes)}\n"
                for requirement, hashes in entries
                if requirement.marker is None or requirement.marker.evaluate(environment)
            ]
            (where / f"pinned-{python}-{platform}.txt").write_text("".join(lines), encoding="utf-8")
    return lambda platform, python: where / f"pinned-{python}-{platform}.txt"


def lock_document() -> dict[str, Any]:
    return tomllib.loads(LOCK.read_text(encoding="utf-8"))


def lock_packages() -> list[tuple[str, str]]:
    """(name, version) of every package of the lock."""
    return [(p["name"], p["version"]) for p in lock_document().get("packages", [])]


def lock_filenames() -> set[str]:
    """The files the lock lists (all files of each locked release that the cache held when locking)."""
    names = set()
    for package in lock_document().get("packages", []):
        for item in [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]:
            names.add(item.get("name") or item["url"].rsplit("/", 1)[-1])
    return names


def lock_stamp() -> dict[str, Any]:
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    return {"lock_sha256": digest, "pythons": list(PYTHONS), "platforms": list(PLATFORMS)}


def lock_cache_is_filled() -> bool:
    """Does FILES hold every file the lock scenario needs?"""
    try:
        if json.loads(LOCK_STAMP.read_text(encoding="utf-8")) == lock_stamp():
            return True
    except (OSError, ValueError):
        pass
    if all((FILES / name).is_file() for name in lock_filenames()):
        LOCK_STAMP.write_text(json.dumps(lock_stamp(), indent=2) + "\n", encoding="utf-8")
        return True
    return False


def fill_lock_cache(workdir: Path) -> None:
    """Fetch the lock's files for the matrix from PyPI into FILES: ``devpi warmup --lock ... --dest``."""
    FILES.mkdir(parents=True, exist_ok=True)
    log = workdir / "fill-lock.log"
    say(
        f"filling {FILES} with the files of {LOCK.name} from PyPI through a throwaway devpi-server (log: {log})"
    )
    server, client, _ = pypi_client(workdir / "lock-fill")
    try:
        warm = measure(
            warmup_argv(client.clientdir, "--dest", str(FILES), inputs=lock_inputs()),
            warmup_env(workdir / "lock-fill" / "xdg-cache"),
            log,
        )
    finally:
        server.stop()
    say(f"  devpi warmup --lock --dest: exit {warm.returncode} in {warm.seconds:.1f} s")
    quarantine_unsupported()
    if warm.returncode:
        raise SystemExit(f"filling the file cache for the lock failed:\n{log_tail(log)}")
    LOCK_STAMP.write_text(json.dumps(lock_stamp(), indent=2) + "\n", encoding="utf-8")


def size_mb(size: int) -> float:
    return size / 1e6


# -- one contender, cold and again ----------------------------------------------------------


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
class Result:
    name: str
    cold: Run
    rerun: Run
    cold_traffic: Traffic
    rerun_traffic: Traffic
    reports: dict[str, Path] = field(default_factory=dict)
    floor: Floor | None = None  # what a re-run must at least ask devpi, timed (lock scenario)

    @property
    def ok(self) -> bool:
        return not (self.cold.returncode or self.rerun.returncode)


def fresh_scene(workdir: Path, upstream: Upstream) -> DevpiScene:
    """A new devpi-server with alice/upstream mirroring the local upstream and alice/dev in use."""
    server = DevpiServer(workdir / "server", free_port())
    server.init()
    return setup_scene(server, DevpiClient(workdir / "client", server), upstream.url)


@dataclass
class Floor:
    """The requests a lock re-run cannot avoid, timed on their own against the same warm devpi."""

    pages: int  # project pages (PEP 691 JSON), each once
    probes: int  # JSON views of the +f/ files (devpi's "is it stored?"), each once
    sequential: float  # seconds, one request after the other on one keep-alive session
    pages_sequential: float  # ... of which the project pages
    parallel: float  # seconds, spread over os.cpu_count() threads (warmup's default --jobs)
    threads: int


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
    """Run ``contender`` on a fresh devpi ("cold"), then once more on the same devpi.

    ``after(scene, result)`` runs once the re-run is done, while that devpi still runs.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    scene = fresh_scene(workdir, upstream)
    try:
        upstream.clear_log()
        say(f"{name}: cold run")
        cold = with_server_cpu(scene, lambda: contender(scene, "cold"))
        cold_traffic = traffic(upstream)
        say(f"{name}: cold run exit {cold.returncode} in {cold.seconds:.1f} s")
        time.sleep(1)  # let devpi commit the last file it streamed
        upstream.clear_log()
        say(f"{name}: re-run")
        rerun = with_server_cpu(scene, lambda: contender(scene, "rerun"))
        rerun_traffic = traffic(upstream)
        say(f"{name}: re-run exit {rerun.returncode} in {rerun.seconds:.1f} s")
        result = Result(name, cold, rerun, cold_traffic, rerun_traffic)
        if after is not None:
            after(scene, result)
    finally:
        scene.server.stop()
    return result


def with_server_cpu(scene: DevpiScene, action: Callable[[], Run]) -> Run:
    """``action()``, with the CPU time devpi-server spent meanwhile."""
    pid = server_pid(scene.server)
    before = cpu_seconds(pid)
    result = action()
    result.server_cpu = cpu_seconds(pid) - before
    return result


def bench_loop(workdir: Path, upstream: Upstream, pip: Path) -> Result:
    dest, pip_cache, log = workdir / "wheelhouse", workdir / "pip-cache", workdir / "loop.log"

    def contender(scene: DevpiScene, _phase: str) -> Run:
        result = run_loop(pip, scene.simple_url, dest, pip_cache, log)
        if result.returncode:
            say(f"pip download failed:\n{log_tail(log)}")
        return result

    return cold_and_again(LOOP, workdir, upstream, contender)


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
        argv = warmup_argv(scene.clientdir, "--report", str(reports[phase]), *extra, inputs=inputs)
        result = measure(argv, warmup_env(xdg_cache), log)
        if result.returncode:
            say(f"devpi warmup failed:\n{log_tail(log)}")
        return result

    result = cold_and_again(name, workdir, upstream, contender, after)
    result.reports = reports
    return result


def bench_lock_loop(workdir: Path, upstream: Upstream, pip: Path) -> Result:
    """The seed loop over the lock's hash-pinned requirements, ``--no-deps`` (a lock is complete)."""
    dest, pip_cache, log = workdir / "wheelhouse", workdir / "pip-cache", workdir / "loop.log"
    requirements = write_pinned(workdir / "pinned")

    def contender(scene: DevpiScene, _phase: str) -> Run:
        result = run_loop(pip, scene.simple_url, dest, pip_cache, log, requirements, ["--no-deps"])
        if result.returncode:
            say(f"pip download failed:\n{log_tail(log)}")
        return result

    return cold_and_again(LOCK_LOOP, workdir, upstream, contender)


def bench_lock_warmup(workdir: Path, upstream: Upstream, extra: Sequence[str] = ()) -> Result:
    return bench_warmup(workdir, upstream, extra, inputs=lock_inputs(), name=LOCK_WARMUP, floor=True)


# -- the report -----------------------------------------------------------------------------


def mb(kb: int) -> float:
    return kb / 1024


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


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
            f" {median([r.rerun.seconds for r in results]):>9.2f} {mb(peaks.main_kb):>12.0f}"
            f" {mb(peaks.child_kb):>7.0f} {mb(peaks.tree_kb):>6.0f}"
            f" {size_mb(first.cold_traffic.bytes):>12.1f} {len(first.cold_traffic.files):>6}"
            f" {size_mb(first.rerun_traffic.bytes):>13.1f}"
        )
    print(
        "peak RSS MB: VmHWM of the started process (for the loops: of a pip download); child: the largest\n"
        "process below it (VmHWM sampled every 50 ms); tree: the largest sum of VmRSS\n"
        "over the process tree in one 50 ms sample.  upstream MB / files: file bodies devpi fetched from the\n"
        "upstream during the cold run (files = distinct files = what devpi now stores)."
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


def print_repeats(runs: dict[str, list[Result]]) -> None:
    for name, results in runs.items():
        colds = ", ".join(f"{r.cold.seconds:.1f}" for r in results)
        reruns = ", ".join(f"{r.rerun.seconds:.2f}" for r in results)
        print(f"{name}: cold runs {colds} s; re-runs {reruns} s (the table shows medians)")


def verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def ratio(loop: list[Result], warmup: list[Result], phase: str) -> float:
    return median([getattr(r, phase).seconds for r in loop]) / median(
        [getattr(r, phase).seconds for r in warmup]
    )


def print_targets(loop: list[Result], warmup: list[Result]) -> None:
    cold, rerun = ratio(loop, warmup, "cold"), ratio(loop, warmup, "rerun")
    print(f"cold   loop/warmup = {cold:.2f}x  (target >= {TARGET_COLD}x): {verdict(cold >= TARGET_COLD)}")
    print(f"re-run loop/warmup = {rerun:.2f}x  (target >= {TARGET_RERUN}x): {verdict(rerun >= TARGET_RERUN)}")
    print_rss(warmup)


def print_lock_targets(loop: list[Result], warmup: list[Result]) -> None:
    cold, rerun = ratio(loop, warmup, "cold"), ratio(loop, warmup, "rerun")
    print(f"cold   pinned loop/warmup --lock = {cold:.2f}x  (no target; for comparison)")
    print(
        f"re-run pinned loop/warmup --lock = {rerun:.2f}x  (target >= {TARGET_LOCK_RERUN:.0f}x):"
        f" {verdict(rerun >= TARGET_LOCK_RERUN)}"
    )
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
        loop_rerun = median([r.rerun.seconds for r in loop])
        print(
            f"  pinned loop re-run / parallel probes = {loop_rerun / parallel:.1f}x"
            f" (the most any warmup could reach here without asking devpi less)"
        )
    print_rss(warmup)


def print_rss(warmup: list[Result]) -> None:
    peaks = peak(warmup)
    print(
        f"peak RSS of the {warmup[0].name} process = {mb(peaks.main_kb):.0f} MB"
        f" (target < {TARGET_RSS_MB:.0f} MB): {verdict(mb(peaks.main_kb) < TARGET_RSS_MB)}"
    )
    print(
        f"  its largest child process {mb(peaks.child_kb):.0f} MB;"
        f" whole process tree at its peak {mb(peaks.tree_kb):.0f} MB"
        f" ({verdict(mb(peaks.tree_kb) < TARGET_RSS_MB)} if the target means the tree)"
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
    print(f"matrix: CPython {', '.join(PYTHONS)} x {', '.join(PLATFORMS)}")
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
        print_repeats(runs)
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


def count_requirements() -> int:
    lines = REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="devpi warmup vs the seed's pip download loop")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="run each contender N times (default 1)"
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


def serve_files() -> Upstream:
    """Start the local upstream over FILES and hash every file before anything is timed."""
    upstream = Upstream(FILES).start()
    files = upstream.files()
    say(
        f"local upstream {upstream.url}: {len(files)} files, {size_mb(sum(f.path.stat().st_size for f in files)):.0f} MB"
    )
    return upstream


def bench(
    workdir: Path, repeat: int, warmup_extra: Sequence[str] = (), scenario: str = "all"
) -> dict[str, list[Result]]:
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
    runs: dict[str, list[Result]] = {}
    if scenario != "lock":
        runs.update({LOOP: [], WARMUP: []})
    if scenario != "requirements":
        runs.update({LOCK_LOOP: [], LOCK_WARMUP: []})
    upstream = serve_files()
    try:
        for index in range(1, repeat + 1):
            if scenario != "lock":
                runs[LOOP].append(bench_loop(workdir / f"loop-{index}", upstream, pip))
                runs[WARMUP].append(bench_warmup(workdir / f"warmup-{index}", upstream, warmup_extra))
            if scenario != "requirements":
                runs[LOCK_LOOP].append(bench_lock_loop(workdir / f"lock-loop-{index}", upstream, pip))
                runs[LOCK_WARMUP].append(
                    bench_lock_warmup(workdir / f"lock-warmup-{index}", upstream, warmup_extra)
                )
    finally:
        upstream.stop()
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("PYENV_VERSION", PYENV_VERSIONS)
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
