"""Pinned inputs without re-resolving: pylock.toml, uv.lock and hash-pinned requirements."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import pytest

from devpi_client_warmup.inputs import lock as lock_module
from devpi_client_warmup.inputs.lock import load
from devpi_client_warmup.matrix import Platform, Python, Target
from tests.support.devpi import DevpiScene
from tests.support.dists import Dists
from tests.support.upstream import Upstream
from tests.support.venvs import pip_install, venv_python_ok

LINUX = "manylinux_2_28_x86_64"
NATPKG_LINUX = "natpkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
NATPKG_WIN = "natpkg-1.0-cp39-abi3-win_amd64.whl"


def sha256(dists: Dists, filename: str) -> str:
    return hashlib.sha256(dists[filename].read_bytes()).hexdigest()


def pylock(dists: Dists, *, wrong: str | None = None) -> str:
    """A PEP 751 lock of the upstream's packages, as a locker would write it for any platform."""

    def files(*names: str) -> str:
        hashes = {name: ("0" * 64 if name == wrong else sha256(dists, name)) for name in names}
        return ", ".join(
            f'{{ name = "{n}", url = "https://files.example/{n}", hashes = {{ sha256 = "{h}" }} }}'
            for n, h in hashes.items()
        )

    return f"""\
lock-version = "1.0"
requires-python = ">=3.9"
created-by = "tests"

[[packages]]
name = "pure-a"
version = "2.0"
wheels = [{files("pure_a-2.0-py3-none-any.whl")}]

[[packages]]
name = "pure-b"
version = "1.0"
wheels = [{files("pure_b-1.0-py3-none-any.whl")}]

[[packages]]
name = "needs-win"
version = "1.0"
wheels = [{files("needs_win-1.0-py3-none-any.whl")}]

[[packages]]
name = "winonly-dep"
version = "1.0"
marker = "sys_platform == 'win32'"
wheels = [{files("winonly_dep-1.0-py3-none-any.whl")}]

[[packages]]
name = "old-py-dep"
version = "1.0"
marker = "python_version < '3.11'"
wheels = [{files("old_py_dep-1.0-py3-none-any.whl")}]

[[packages]]
name = "natpkg"
version = "1.0"
wheels = [{files(NATPKG_LINUX, NATPKG_WIN)}]

[[packages]]
name = "sdist-only"
version = "1.0"
sdist = {files("sdist_only-1.0.tar.gz")}
"""


def uv_lock(dists: Dists) -> str:
    def wheel(name: str) -> str:
        return f'{{ url = "https://files.example/{name}", hash = "sha256:{sha256(dists, name)}", size = 1 }}'

    return f"""\
version = 1
revision = 2
requires-python = ">=3.9"

[[package]]
name = "app"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [
    {{ name = "needs-win" }},
    {{ name = "pure-a" }},
    {{ name = "winonly-dep", marker = "sys_platform == 'win32'" }},
    {{ name = "old-py-dep", marker = "python_full_version < '3.11'" }},
]

[[package]]
name = "needs-win"
version = "1.0"
source = {{ registry = "https://pypi.example/simple" }}
wheels = [{wheel("needs_win-1.0-py3-none-any.whl")}]

[[package]]
name = "old-py-dep"
version = "1.0"
source = {{ registry = "https://pypi.example/simple" }}
wheels = [{wheel("old_py_dep-1.0-py3-none-any.whl")}]

[[package]]
name = "pure-a"
version = "2.0"
source = {{ registry = "https://pypi.example/simple" }}
dependencies = [{{ name = "pure-b" }}]
wheels = [{wheel("pure_a-2.0-py3-none-any.whl")}]

[[package]]
name = "pure-b"
version = "1.0"
source = {{ registry = "https://pypi.example/simple" }}
wheels = [{wheel("pure_b-1.0-py3-none-any.whl")}]

[[package]]
name = "winonly-dep"
version = "1.0"
source = {{ registry = "https://pypi.example/simple" }}
wheels = [{wheel("winonly_dep-1.0-py3-none-any.whl")}]
"""


def files_per_target(report_path: Path) -> dict[str, set[str]]:
    report = json.loads(report_path.read_text())
    return {t["name"]: {f["name"] for f in t["files"]} for t in report["targets"]}


COMMON = {"pure_a-2.0-py3-none-any.whl", "pure_b-1.0-py3-none-any.whl", "needs_win-1.0-py3-none-any.whl"}
BUILD = {"warmup_backend-1.0-py3-none-any.whl", "warmup_backend_helper-1.0-py3-none-any.whl"}
SDIST = {"sdist_only-1.0.tar.gz"} | BUILD


def test_pylock_is_warmed_per_target_without_resolving(
    devpi: DevpiScene, dists: Dists, upstream: Upstream, tmp_path: Path, make_venv: Callable[[str], Path]
) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(pylock(dists))
    report = tmp_path / "report.json"
    proc = devpi.warmup("-r", str(lock), "--python", "3.9,3.13", "--platform", f"{LINUX},win_amd64",
                        "--report", str(report), check_exit=0)  # fmt: skip
    assert f"using the lock {lock}: 7 releases, no resolution" in proc.stdout
    assert files_per_target(report) == {
        f"3.9-{LINUX}": COMMON | SDIST | {"old_py_dep-1.0-py3-none-any.whl", NATPKG_LINUX},
        "3.9-win_amd64": COMMON | SDIST | {"old_py_dep-1.0-py3-none-any.whl", "winonly_dep-1.0-py3-none-any.whl", NATPKG_WIN},
        f"3.13-{LINUX}": COMMON | SDIST | {NATPKG_LINUX},
        "3.13-win_amd64": COMMON | SDIST | {"winonly_dep-1.0-py3-none-any.whl", NATPKG_WIN},
    }  # fmt: skip
    roles = {f["name"]: f["role"] for t in json.loads(report.read_text())["targets"] for f in t["files"]}
    assert {name for name, role in roles.items() if role == "build"} == BUILD
    # nothing but the locked files went through devpi (pure-a 1.0 is on the index, never locked)
    assert upstream.file_gets("pure_a-1.0-py3-none-any.whl") == 0

    devpi.server.restart(offline=True)
    for version in ("3.9", "3.13"):
        venv = make_venv(version)
        pip_install(venv, "pure-a==2.0", "pure-b==1.0", "needs-win==1.0", "natpkg==1.0", "sdist-only==1.0",
                    index_url=devpi.simple_url)  # fmt: skip
        venv_python_ok(venv, "import pure_a, pure_b, needs_win, natpkg, sdist_only")
    assert "winonly_dep-1.0-py3-none-any.whl" in devpi.links("winonly-dep")  # for the Windows targets


def test_uv_lock_follows_marker_edges(devpi: DevpiScene, dists: Dists, tmp_path: Path) -> None:
    lock = tmp_path / "uv.lock"
    lock.write_text(uv_lock(dists))
    report = tmp_path / "report.json"
    devpi.warmup("--lock", str(lock), "--python", "3.10,3.12", "--platform", f"{LINUX},win_amd64",
                 "--report", str(report), check_exit=0)  # fmt: skip
    assert files_per_target(report) == {
        f"3.10-{LINUX}": COMMON | {"old_py_dep-1.0-py3-none-any.whl"},
        "3.10-win_amd64": COMMON | {"old_py_dep-1.0-py3-none-any.whl", "winonly_dep-1.0-py3-none-any.whl"},
        f"3.12-{LINUX}": COMMON,
        "3.12-win_amd64": COMMON | {"winonly_dep-1.0-py3-none-any.whl"},
    }  # fmt: skip


def test_lock_hash_that_differs_from_the_index_is_an_error(
    devpi: DevpiScene, dists: Dists, tmp_path: Path
) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(pylock(dists, wrong="pure_b-1.0-py3-none-any.whl"))
    proc = devpi.warmup("-r", str(lock), "--python", "3.12", "--platform", LINUX, check_exit=1)
    assert (
        f"3.12-{LINUX}: FAILED: pure_b-1.0-py3-none-any.whl: the lock says sha256 {'0' * 64}" in proc.stdout
    )


def test_locked_package_without_a_file_for_a_target_is_reported(
    devpi: DevpiScene, dists: Dists, tmp_path: Path
) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(pylock(dists))
    proc = devpi.warmup("-r", str(lock), "--python", "3.12", "--platform", f"{LINUX},macosx_11_0_x86_64",
                        check_exit=1)  # fmt: skip
    assert f"3.12-{LINUX}: ok" in proc.stdout
    assert (
        "3.12-macosx_11_0_x86_64: FAILED: natpkg 1.0: no file on the index fits 3.12-macosx_11_0_x86_64"
        in proc.stdout
    )


def test_hash_pinned_requirements_are_a_lock(devpi: DevpiScene, dists: Dists, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(
        f"pure-a==2.0 --hash=sha256:{sha256(dists, 'pure_a-2.0-py3-none-any.whl')}\n"
        f"pure-b==1.0 --hash=sha256:{sha256(dists, 'pure_b-1.0-py3-none-any.whl')}\n"
        f"winonly-dep==1.0 ; sys_platform == 'win32' --hash=sha256:{sha256(dists, 'winonly_dep-1.0-py3-none-any.whl')}\n"
    )
    report = tmp_path / "report.json"
    proc = devpi.warmup("-r", str(requirements), "--python", "3.12", "--platform", f"{LINUX},win_amd64",
                        "--report", str(report), check_exit=0)  # fmt: skip
    assert "using the lock hash-pinned requirements: 3 releases, no resolution" in proc.stdout
    assert files_per_target(report) == {
        f"3.12-{LINUX}": {"pure_a-2.0-py3-none-any.whl", "pure_b-1.0-py3-none-any.whl"},
        "3.12-win_amd64": {"pure_a-2.0-py3-none-any.whl", "pure_b-1.0-py3-none-any.whl",
                           "winonly_dep-1.0-py3-none-any.whl"},
    }  # fmt: skip


def test_rerun_of_an_unchanged_lock_asks_devpi_nothing_about_files(
    devpi: DevpiScene, dists: Dists, tmp_path: Path
) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text(pylock(dists))
    args = ("--lock", str(lock), "--python", "3.12", "--platform", f"{LINUX},win_amd64")
    devpi.warmup(*args, check_exit=0)

    log_before = len(devpi.server.log_text())
    proc = devpi.warmup(*args, "--report", str(tmp_path / "again.json"), check_exit=0)
    assert "devpi has not changed since this lock was last warmed completely" in proc.stdout
    assert "/+f/" not in devpi.server.log_text()[log_before:]  # no probe, no download
    again = files_per_target(tmp_path / "again.json")
    assert again[f"3.12-{LINUX}"] == COMMON | SDIST | {NATPKG_LINUX}

    devpi.client.create_index("alice/scratch", "bases=")  # any change to devpi: probe again
    proc = devpi.warmup(*args, check_exit=0)
    assert "has not changed" not in proc.stdout


def test_a_uv_lock_lattice_is_walked_in_linear_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every package of a layer depends on every package of the next, with edge markers: the
    paths are exponential in the layers (4**12), the walk must not be: each edge is evaluated
    once per walk."""
    layers, width = 12, 4
    packages = ['[[package]]\nname = "app"\nversion = "0.1.0"\nsource = { virtual = "." }\ndependencies = [\n'
                + "".join(f'    {{ name = "p0-{i}" }},\n' for i in range(width)) + "]\n"]  # fmt: skip
    for layer in range(layers):
        for i in range(width):
            edges = (
                "".join(
                    f'    {{ name = "p{layer + 1}-{j}", marker = "sys_platform != \'plan9\'" }},\n'
                    for j in range(width)
                )
                if layer + 1 < layers
                else ""
            )
            packages.append(
                f'[[package]]\nname = "p{layer}-{i}"\nversion = "1.0"\n'
                f'source = {{ registry = "https://pypi.org/simple" }}\ndependencies = [\n{edges}]\n'
            )
    path = tmp_path / "uv.lock"
    path.write_text('version = 1\nrequires-python = ">=3.9"\n\n' + "\n".join(packages))
    lock = load(path)
    evaluated = []
    real = lock_module._edge_applies
    monkeypatch.setattr(
        lock_module, "_edge_applies", lambda text, env: evaluated.append(text) or real(text, env)
    )
    target = Target(Python.parse("3.12"), Platform.parse("win_amd64"))
    assert lock.graph is not None
    reachable = lock.graph.reachable(target.marker_environment)
    assert len(lock.packages) == len(reachable) == layers * width
    assert len(evaluated) == (layers - 1) * width * width  # every edge once


def test_a_lock_names_a_file_as_the_index_does_when_its_url_quotes_it(tmp_path: Path) -> None:
    """A lock of the PyTorch index's wheels gives URLs like ``torch-2.1.0%2Bcpu-...``; devpi
    lists them unquoted (``+``): the lock's hash is keyed by that name, so it is checked."""
    sha = "ab" * 32
    uv = tmp_path / "uv.lock"
    uv.write_text(f"""\
version = 1
requires-python = ">=3.9"

[[package]]
name = "app"
version = "0.1.0"
source = {{ virtual = "." }}
dependencies = [{{ name = "torch" }}]

[[package]]
name = "torch"
version = "2.1.0+cpu"
source = {{ registry = "https://download.pytorch.example/whl/cpu" }}
wheels = [{{ url = "https://download.pytorch.example/whl/cpu/torch-2.1.0%2Bcpu-cp312-cp312-linux_x86_64.whl", hash = "sha256:{sha}" }}]
""")
    pylock = tmp_path / "pylock.toml"
    pylock.write_text(f"""\
lock-version = "1.0"
created-by = "tests"

[[packages]]
name = "torch"
version = "2.1.0+cpu"
wheels = [{{ url = "https://download.pytorch.example/whl/cpu/torch-2.1.0%2Bcpu-cp312-cp312-linux_x86_64.whl", hashes = {{ sha256 = "{sha}" }} }}]
""")
    for path in (uv, pylock):
        [torch] = load(path).packages
        assert torch.hashes == {"torch-2.1.0+cpu-cp312-cp312-linux_x86_64.whl": sha}, path.name
