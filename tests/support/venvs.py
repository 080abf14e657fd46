"""Virtual environments for CPython 3.9 .. 3.13 and pip driven from outside them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from functools import cache
from importlib.metadata import metadata
from pathlib import Path

import pip
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from .devpi import clean_env, run

PYENV_VERSIONS = "3.11.7:3.9.18:3.10.13:3.12.1:3.13.0"


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def venv_version(venv: Path) -> Version:
    """Python version recorded in ``pyvenv.cfg``."""
    text = (venv / "pyvenv.cfg").read_text(encoding="utf-8")
    found = re.search(r"^version(?:_info)?\s*=\s*([\d.]+)", text, re.MULTILINE)
    assert found, f"no version in {venv / 'pyvenv.cfg'}"
    return Version(found.group(1))


def create_venv(dest: Path, python_version: str) -> Path:
    """``pythonX.Y -m venv --without-pip dest``; fails loudly if X.Y is missing."""
    exe = f"python{python_version}"
    env = clean_env()
    env.setdefault("PYENV_VERSION", PYENV_VERSIONS)
    if shutil.which(exe, path=env.get("PATH")) is None:
        raise AssertionError(f"{exe} not found on PATH; the test suite needs CPython {python_version}")
    run([exe, "-m", "venv", "--without-pip", str(dest)], env=env)
    return dest


@cache
def _host_pip_supports(version: str) -> bool:
    requires = metadata("pip")["Requires-Python"] or ""
    return SpecifierSet(requires).contains(version)


_UNPACKED: list[Path] = []  # the folder ``unpack_bundled_pips_into`` names


def unpack_bundled_pips_into(folder: Path) -> None:
    """Where the pip wheels that ``ensurepip`` bundles are unpacked (once per test process)."""
    _UNPACKED[:] = [folder]


@cache
def _bundled_pip(python: str, version: str) -> str:
    """The pip of the wheel that ``ensurepip`` bundles with ``python``, unpacked and compiled:
    run from the zip, as ``python pip.whl/pip``, it would compile itself on every run (1.5 s)."""
    code = (
        "import ensurepip, pathlib;"
        "print(*pathlib.Path(ensurepip.__file__).parent.joinpath('_bundled').glob('pip-*.whl'))"
    )
    wheel = Path(run([python, "-c", code]).stdout.strip())
    assert wheel.name, f"{python} bundles no pip wheel"
    assert _UNPACKED, "unpack_bundled_pips_into was not called (see tests/conftest.py)"
    folder = _UNPACKED[0] / f"{version}-{wheel.stem}"
    if not folder.exists():
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(folder)
        run([python, "-m", "compileall", "-q", str(folder / "pip")])
    return str(folder / "pip")


def pip_command(venv: Path) -> list[str]:
    """argv prefix running pip for ``venv`` without installing pip into it.

    The host pip is used where it supports the venv's Python: the venv's
    Python runs its ``__pip-runner__.py``, as ``pip --python`` does (without
    the process that would start it). Older Pythons (3.9 with pip >= 26) run
    the pip their own ``ensurepip`` bundles instead (unpacked once).
    """
    python = str(venv_python(venv))
    version = str(venv_version(venv))
    if _host_pip_supports(version):
        return [python, str(Path(pip.__file__).parent / "__pip-runner__.py")]
    return [python, _bundled_pip(python, version)]


def pip_install(
    venv: Path, *args: str, index_url: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``pip install --index-url URL ARGS`` into ``venv`` (clean env, no pip.conf)."""
    argv = [*pip_command(venv), "install", "--disable-pip-version-check", "--index-url", index_url]
    return run([*argv, *args], check=check)


def pip_download(
    dest: Path, *args: str, index_url: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``pip download -d DEST --index-url URL ARGS`` with the host pip (clean env)."""
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check"]
    return run([*argv, "-d", str(dest), "--index-url", index_url, *args], check=check)


def venv_python_ok(venv: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` in ``venv``; AssertionError with output if it fails."""
    return run([str(venv_python(venv)), "-c", code])
