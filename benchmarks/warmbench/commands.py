"""The contenders' command lines: the seed's ``pip download`` loop and ``devpi warmup``."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from .log import say
from .matrix import Matrix
from .measure import TIMEOUT, Run, measure
from .support import clean_env, executable, run

LOOP_PYTHON = "python3.11"  # the seed's venv; must be on PATH


def make_pip(where: Path) -> Path:
    """The seed's venv: ``python3.11 -m venv`` and ``pip install -U pip``; its pip script."""
    if shutil.which(LOOP_PYTHON) is None:
        raise SystemExit(
            f"{LOOP_PYTHON} is not on PATH (the loop's venv needs it; with pyenv, set PYENV_VERSION)"
        )
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
    python: str,
    platform: str,
    requirements: Path,
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
    targets: Sequence[tuple[str, str]],
    requirements: Callable[[str, str], Path],
    extra: Sequence[str] = (),
    stop_on_failure: bool = True,
    timeout: float = TIMEOUT,
) -> Run:
    """The seed's loop: one ``pip download`` per (python, platform) target, one after the other.

    ``requirements(python, platform)``: the requirements file of that target.  With
    ``stop_on_failure`` it stops at the first failing target, as the seed script's ``set -e``.
    """
    total = Run()
    for python, platform in targets:
        argv = loop_argv(pip, index_url, dest, python, platform, requirements(python, platform), extra)
        total = total.then(measure(argv, loop_env(pip_cache), log, timeout))
        if total.returncode and stop_on_failure:
            break
    return total


def warmup_argv(clientdir: Path, inputs: Sequence[str], matrix: Matrix, *extra: str) -> list[str]:
    """``devpi warmup INPUTS <matrix> EXTRA`` (INPUTS: ``-r requirements.txt``, ``--lock pylock.toml``)."""
    return [executable("devpi"), "--clientdir", str(clientdir), "warmup", *inputs, *matrix.options(), *extra]


def warmup_env(xdg_cache: Path) -> dict[str, str]:
    """clean_env with devpi warmup's own cache in ``xdg_cache``."""
    xdg_cache.mkdir(parents=True, exist_ok=True)
    return clean_env(XDG_CACHE_HOME=str(xdg_cache))


def one_resolution(pip: Path, index_url: str, requirements: Path, log: Path) -> float:
    """Seconds of one pip resolution of one target (CPython 3.12, manylinux2014_x86_64; no pip cache)."""
    argv = [
        str(pip), "install", "--dry-run", "--ignore-installed", "--no-cache-dir", "--disable-pip-version-check",
        "--index-url", index_url, "--platform", "manylinux2014_x86_64", "--python-version", "312",
        "--only-binary=:all:", "--target", str(log.parent / "never"), "--report", os.devnull,
        "-r", str(requirements),
    ]  # fmt: skip
    return measure(argv, clean_env(), log).seconds
