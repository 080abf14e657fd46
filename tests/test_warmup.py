"""The seed's scenario, automated: warm a real devpi-server, cut it off, install from it."""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Callable

from tests.support.devpi import (
    ROOT_PASSWORD,
    DevpiClient,
    DevpiScene,
    DevpiServer,
    clean_env,
    executable,
    free_port,
    run,
)
from tests.support.upstream import Upstream
from tests.support.venvs import pip_command, pip_install, venv_python_ok

LINUX = "manylinux_2_28_x86_64"
REQUIREMENTS = """\
# the seed's requirements, with markers that pip would evaluate against this machine
pure-a>=2            # pulls pure-b
needs-win            # winonly-dep on Windows only
needs-old-py         # old-py-dep below Python 3.11 only
natpkg               # platform wheels only
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def cached_files(devpi: DevpiScene, *projects: str) -> set[str]:
    """Filenames the (offline) devpi lists for ``projects``: exactly what it stores."""
    return {name for project in projects for name in devpi.links(project)}


def test_seed_scenario_two_pythons_two_platforms_then_offline_install(
    devpi: DevpiScene, tmp_path: Path, make_venv: Callable[[str], Path]
) -> None:
    requirements = write(tmp_path / "requirements.txt", REQUIREMENTS)
    proc = devpi.warmup("-r", str(requirements), "--python", "3.9,3.13", "--platform", LINUX,
                        "--platform", "win_amd64", check_exit=0)  # fmt: skip
    for target in ("3.9-" + LINUX, "3.13-" + LINUX, "3.9-win_amd64", "3.13-win_amd64"):
        assert f"{target}: ok" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr

    devpi.server.restart(offline=True)
    # what pip would have skipped on this Linux 3.11 host is there for the targets that need it
    assert cached_files(devpi, "winonly-dep") == {"winonly_dep-1.0-py3-none-any.whl"}
    assert cached_files(devpi, "old-py-dep") == {"old_py_dep-1.0-py3-none-any.whl"}
    assert cached_files(devpi, "natpkg") == {
        "natpkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "natpkg-1.0-cp39-abi3-win_amd64.whl",
    }
    for version in ("3.9", "3.13"):
        venv = make_venv(version)
        pip_install(venv, "-r", str(requirements), index_url=devpi.simple_url)
        checked = venv_python_ok(venv, "import pure_a, pure_b, needs_win, natpkg; print(pure_a.__version__)")
        assert checked.stdout.strip() == "2.0"
    venv_python_ok(make_venv("3.9"), "pass")


def test_matrix_from_pyproject(devpi: DevpiScene, tmp_path: Path, make_venv: Callable[[str], Path]) -> None:
    write(
        tmp_path / "pyproject.toml",
        f"""\
        [project]
        name = "app"
        version = "1"
        dependencies = ["pure-a>=2", "needs-old-py"]

        [project.optional-dependencies]
        native = ["natpkg"]

        [tool.devpi-warmup]
        python = ["3.10", "3.12"]
        platform = ["{LINUX}"]
        extras = ["native"]
        """,
    )
    devpi_cmd = [executable("devpi"), "--clientdir", str(devpi.clientdir), "warmup", "--matrix", "pyproject"]
    proc = run(devpi_cmd, cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"3.10-{LINUX}: ok" in proc.stdout and f"3.12-{LINUX}: ok" in proc.stdout

    devpi.server.restart(offline=True)
    for version in ("3.10", "3.12"):
        venv = make_venv(version)
        pip_install(venv, "pure-a>=2", "needs-old-py", "natpkg", index_url=devpi.simple_url)
        venv_python_ok(venv, "import pure_a, pure_b, needs_old_py, natpkg")
    # old-py-dep: needed by 3.10 only, and warmed for it
    venv = make_venv("3.10")
    pip_install(venv, "old-py-dep", index_url=devpi.simple_url)


def test_dest_keeps_verified_files_and_index_option(
    devpi: DevpiScene, tmp_path: Path, upstream: Upstream
) -> None:
    devpi.client.create_index("alice/other", "bases=")  # the current index has nothing
    devpi.client.use(f"{devpi.server.url}/alice/other")
    dest = tmp_path / "wheelhouse"
    proc = devpi.warmup("pure-a", "--index", "alice/dev", "--python", "3.12", "--platform", LINUX,
                        "--dest", str(dest), "--report", str(tmp_path / "report.json"), check_exit=0)  # fmt: skip
    assert "/alice/dev/+simple/" in proc.stdout
    assert sorted(p.name for p in dest.iterdir()) == [
        "pure_a-2.0-py3-none-any.whl",
        "pure_b-1.0-py3-none-any.whl",
    ]
    report = json.loads((tmp_path / "report.json").read_text())
    umask = os.umask(0o022)
    os.umask(umask)
    assert {oct(p.stat().st_mode & 0o777) for p in dest.iterdir()} == {
        oct(0o666 & ~umask)
    }  # as cp makes them
    files = {f["name"]: f for f in report["targets"][0]["files"]}
    for path in dest.iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == files[path.name]["sha256"]
        assert files[path.name]["fetched"] is True
        assert path.read_bytes() == (upstream.root / path.name).read_bytes()

    # a damaged copy in the wheelhouse is replaced; intact ones are kept as they are
    (dest / "pure_b-1.0-py3-none-any.whl").write_bytes(b"damaged")
    devpi.warmup("pure-a", "--index", "alice/dev", "--python", "3.12", "--platform", LINUX,
                 "--dest", str(dest), check_exit=0)  # fmt: skip
    assert (dest / "pure_b-1.0-py3-none-any.whl").read_bytes() == (
        upstream.root / "pure_b-1.0-py3-none-any.whl"
    ).read_bytes()
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]


def test_one_unsatisfiable_target_exits_1_and_others_are_warmed(devpi: DevpiScene) -> None:
    # natpkg has no wheel (and no sdist) for Intel Macs
    proc = devpi.warmup("natpkg", "pure-a", "--python", "3.12", "--platform", f"{LINUX},macosx_11_0_x86_64",
                        check_exit=1)  # fmt: skip
    assert "3.12-macosx_11_0_x86_64: FAILED" in proc.stdout
    assert "natpkg" in proc.stdout.split("3.12-macosx_11_0_x86_64: FAILED", 1)[1].splitlines()[0]
    assert f"3.12-{LINUX}: ok" in proc.stdout
    devpi.server.restart(offline=True)
    assert "natpkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" in devpi.links("natpkg")
    assert "pure_a-2.0-py3-none-any.whl" in devpi.links("pure-a")


def test_dry_run_fetches_nothing(devpi: DevpiScene, upstream: Upstream) -> None:
    upstream.clear_log()
    proc = devpi.warmup("pure-a", "--python", "3.9,3.12", "--platform", "linux,windows", "--dry-run",
                        check_exit=0)  # fmt: skip
    assert f"3.9-{LINUX}: pip install --dry-run --prefer-binary --implementation cp" in proc.stdout
    assert "3.12-win_amd64: pip install --dry-run --prefer-binary" in proc.stdout
    assert "--python-version 3.9.25 " in proc.stdout  # a bare 3.9: the newest patch release
    assert "note: markers and Requires-Python see python_full_version 3.12.12, 3.9.25" in proc.stdout
    assert f"note: a platform tag is a floor: {LINUX} is every machine of that glibc or newer" in proc.stdout
    # no project page and no file; devpi reads the upstream's project list (/simple/) on its
    # own, when a mirror is made or the server restarts (devpi-web indexes it then)
    assert [path for path in upstream.paths() if path != "/simple/"] == []


def test_wheelhouse_route_into_a_second_devpi_in_the_closed_network(
    devpi: DevpiScene, tmp_path: Path, make_venv: Callable[[str], Path]
) -> None:
    """README's closed side: --dest DIR, carried over, loaded into a devpi there with
    ``devpi index -c airgap bases=`` and ``devpi upload --from-dir``; a machine without a
    compiler installs from it (the sdist builds with the warmed backend)."""
    wheelhouse = tmp_path / "wheelhouse"
    devpi.warmup("pure-a", "static-sdist", "--python", "3.12", "--platform", LINUX, "--dest", str(wheelhouse),
                 check_exit=0)  # fmt: skip
    assert {p.name for p in wheelhouse.iterdir()} == {
        "pure_a-2.0-py3-none-any.whl", "pure_b-1.0-py3-none-any.whl", "static_sdist-1.0.tar.gz",
        "warmup_backend-1.0-py3-none-any.whl", "warmup_backend_helper-1.0-py3-none-any.whl",
    }  # fmt: skip
    devpi.server.stop()  # the open side is gone

    closed = DevpiServer(tmp_path / "closed-server", free_port())
    closed.init()
    try:
        closed.start()
        client = DevpiClient(tmp_path / "closed-client", closed)
        client.use(closed.url)
        client.login("root", ROOT_PASSWORD)
        client.create_index("root/airgap", "bases=")
        client.use(f"{closed.url}/root/airgap")
        client.run("upload", "--from-dir", str(wheelhouse))
        venv = make_venv("3.12")
        run([*pip_command(venv), "install", "--index-url", f"{closed.url}/root/airgap/+simple/",
             "pure-a", "static-sdist"], env=clean_env(CC="/bin/false"))  # fmt: skip
        venv_python_ok(venv, "import pure_a, pure_b, static_sdist")
    finally:
        closed.stop()


def on_a_terminal(devpi: DevpiScene, upstream: Upstream, columns: int) -> str:
    """``devpi warmup pure-a`` for two targets with a terminal of ``columns`` columns as
    stdout, while devpi's upstream holds pure-b's page for 4 s: what it wrote."""
    argv = [executable("devpi"), "--clientdir", str(devpi.clientdir), "warmup", "pure-a",
            "--python", "3.12,3.13", "--platform", LINUX, "--jobs", "2"]  # fmt: skip
    env = {k: v for k, v in clean_env(COLUMNS=str(columns)).items() if k != "CI"}
    terminal, child_side = os.openpty()
    process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=child_side, stderr=child_side)
    os.close(child_side)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    upstream.stall_project("pure-b", 4)
    try:
        while time.monotonic() < deadline:
            if not select.select([terminal], [], [], 1)[0]:
                continue
            try:
                data = os.read(terminal, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        assert process.wait(timeout=30) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        process.kill()
        os.close(terminal)
        upstream.heal("project:pure-b")
    return b"".join(chunks).decode(errors="replace")


def test_live_line_names_each_running_target_and_what_its_pip_asks_for(
    devpi: DevpiScene, upstream: Upstream
) -> None:
    """On a terminal, the live line shows every target still resolving, its elapsed time and
    what its pip waits for (here a page that devpi's upstream is slow to give)."""
    output = on_a_terminal(devpi, upstream, 400)
    states = [part.strip() for part in output.split("\r\x1b[K") if "; resolving " in part]
    for version in ("3.12", "3.13"):
        name = f"{version}-{LINUX}"
        waiting = [s for s in states if re.search(rf"[ ,]{re.escape(name)} [1-9]\d* s \(page of pure-b\)", s)]
        assert waiting, output
        assert f"{name}: ok (" in output, output


def test_live_line_fits_a_narrow_terminal(devpi: DevpiScene, upstream: Upstream) -> None:
    """The live line is cut to the terminal's width, so that clearing it clears all of it
    (a wrapped line would pile up)."""
    output = on_a_terminal(devpi, upstream, 40)
    states = [part for part in output.split("\r\x1b[K")[1:] if part and "\n" not in part]
    assert any("targets done" in state for state in states), output
    assert all(len(state) <= 39 for state in states), [s for s in states if len(s) > 39]
    assert any(state.endswith("...") for state in states), output  # "; resolving ..." was cut
