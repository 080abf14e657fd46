"""The local file corpus bench.py serves as its upstream, filled once from PyPI, and the lock files.

The corpus lives in ``$DEVPI_WARMUP_BENCH_CACHE`` (default ``~/.cache/devpi-warmup-bench``):
``files/`` holds the wheels and sdists, ``filled.json`` and ``lock-filled.json`` say for which
inputs and matrix it was filled, ``unsupported/`` holds files the local upstream cannot serve.
Delete the folder to refill.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

from .commands import run_loop, warmup_argv, warmup_env
from .log import log_tail, say
from .matrix import BENCH, marker_environment
from .measure import measure
from .servers import pypi_client

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

DATA = Path(__file__).resolve().parent.parent
REQUIREMENTS = DATA / "requirements.txt"  # the requirements scenario
LOCK_REQUIREMENTS = DATA / "lock-requirements.txt"  # the lock's inputs (see make_lock.py)
LOCK = DATA / "pylock.toml"  # the lock scenario's lock, made by make_lock.py
PINNED = DATA / "pylock-requirements.txt"  # the same lock exported as hash-pinned requirements

BENCH_CACHE = Path(
    os.environ.get("DEVPI_WARMUP_BENCH_CACHE") or Path.home() / ".cache" / "devpi-warmup-bench"
)
FILES = BENCH_CACHE / "files"
STAMP = BENCH_CACHE / "filled.json"
LOCK_STAMP = BENCH_CACHE / "lock-filled.json"
QUARANTINE = BENCH_CACHE / "unsupported"


def count_requirements(path: Path = REQUIREMENTS) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))


# -- the requirements scenario's files ------------------------------------------------------


def fill_stamp() -> dict[str, Any]:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    return {"requirements_sha256": digest, "pythons": list(BENCH.pythons), "platforms": list(BENCH.platforms)}


def cache_is_filled() -> bool:
    try:
        stamp = json.loads(STAMP.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(stamp == fill_stamp() and FILES.is_dir() and any(FILES.iterdir()))


def fill_cache(workdir: Path, pip: Path) -> None:
    """Fill FILES with what both requirements contenders fetch for the matrix from the real PyPI."""
    FILES.mkdir(parents=True, exist_ok=True)
    log = workdir / "fill.log"
    say(f"filling {FILES} from PyPI through a throwaway devpi-server (log: {log})")
    server, client, simple_url = pypi_client(workdir)
    try:
        report = ["--report", str(workdir / "fill-report.json")]
        argv = warmup_argv(client.clientdir, ["-r", str(REQUIREMENTS)], BENCH, "--dest", str(FILES), *report)
        warm = measure(argv, warmup_env(workdir / "fill-xdg-cache"), log)
        say(f"  devpi warmup --dest: exit {warm.returncode} in {warm.seconds:.1f} s")
        loop = run_loop(
            pip, simple_url, FILES, workdir / "fill-pip-cache", log, BENCH.targets(), lambda *_: REQUIREMENTS
        )
        say(f"  pip download loop --dest: exit {loop.returncode} in {loop.seconds:.1f} s")
    finally:
        server.stop()
    quarantine_unsupported()
    if warm.returncode or loop.returncode:
        raise SystemExit(f"filling the file cache failed:\n{log_tail(log)}\n{server.log_tail()}")
    STAMP.write_text(json.dumps(fill_stamp(), indent=2) + "\n", encoding="utf-8")


def quarantine_unsupported() -> None:
    """Move files the local upstream cannot serve (not .whl / .tar.gz) out of FILES."""
    for path in sorted(FILES.iterdir()):
        if path.is_file() and not path.name.endswith((".whl", ".tar.gz")):
            QUARANTINE.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), QUARANTINE / path.name)
            say(f"  moved {path.name} to {QUARANTINE} (the local upstream serves only .whl and .tar.gz)")


# -- the lock scenario's files --------------------------------------------------------------


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
    Returns ``requirements(python, platform)``: the file of that target.
    """
    where.mkdir(parents=True, exist_ok=True)
    entries = pinned_entries()
    for python, platform in BENCH.targets():
        environment = marker_environment(python, platform)
        lines = [
            f"{requirement.name}{requirement.specifier} {' '.join(hashes)}\n"
            for requirement, hashes in entries
            if requirement.marker is None or requirement.marker.evaluate(environment)
        ]
        (where / f"pinned-{python}-{platform}.txt").write_text("".join(lines), encoding="utf-8")
    return lambda python, platform: where / f"pinned-{python}-{platform}.txt"


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
    return {"lock_sha256": digest, "pythons": list(BENCH.pythons), "platforms": list(BENCH.platforms)}


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
            warmup_argv(client.clientdir, ["--lock", str(LOCK)], BENCH, "--dest", str(FILES)),
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
