"""Wheels first, and no package's code runs on the warming machine to learn metadata.

For each requirement a target gets the newest release with a wheel for it (pip's
``--prefer-binary``); sdists only where no release has one. An sdist's dependencies are
read, not built: its static PEP 643 PKG-INFO, else the METADATA of a wheel of the same
release, else a legacy sdist's egg-info. The test build backend logs every hook it runs,
which proves that nothing was built. Both ways of cutting devpi off are installed from.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Callable

from tests.support.devpi import DevpiScene, clean_env, run
from tests.support.dists import Dists, hook_log, installed_as_wheel, make_setup_py_sdist
from tests.support.upstream import Upstream
from tests.support.venvs import pip_command, pip_install, venv_python_ok

LINUX = "manylinux_2_28_x86_64"
BUILD = {"warmup_backend-1.0-py3-none-any.whl", "warmup_backend_helper-1.0-py3-none-any.whl"}


def report_files(path: Path) -> dict[str, set[str]]:
    return {t["name"]: {f["name"] for f in t["files"]} for t in json.loads(path.read_text())["targets"]}


def test_wheels_first_and_no_metadata_is_built(devpi: DevpiScene, dists: Dists, tmp_path: Path) -> None:
    hooks_before = hook_log(dists)
    probes = tmp_path / "probes"  # what pip's User-Agent runs, unless resolve._pip stops it
    probes.mkdir()
    for name in ("rustc", "lsb_release"):
        (probes / name).write_text(f"#!/bin/sh\necho {name} >> {probes / 'ran'}\nexit 1\n")
        (probes / name).chmod(0o755)
    report = tmp_path / "report.json"
    proc = devpi.warmup(
        "newer-sdist", "static-sdist", "wheel-sibling", "legacy-sdist",
        "--python", "3.11", "--platform", f"{LINUX},win_amd64", "--report", str(report), check_exit=0,
        env=clean_env(PATH=f"{probes}{os.pathsep}{os.environ['PATH']}"),
    )  # fmt: skip
    assert hook_log(dists) == hooks_before, "a build backend ran on the warming machine"
    assert not (probes / "ran").exists(), (probes / "ran").read_text()
    files = report_files(report)
    assert files[f"3.11-{LINUX}"] == {
        "newer_sdist-1.0-py3-none-any.whl",  # 2.0 has no wheel: the newest release with one
        "static_sdist-1.0.tar.gz",
        "wheel_sibling-1.0.tar.gz",
        "legacy_sdist-1.0.tar.gz",
        "pure_b-1.0-py3-none-any.whl",
        *BUILD,
        "setuptools-80.0-py3-none-any.whl",  # a setup.py project: what pip 23 and 26 build it with
        "wheel-0.45.1-py3-none-any.whl",
    }
    assert files["3.11-win_amd64"] == {
        "newer_sdist-1.0-py3-none-any.whl",
        "static_sdist-1.0.tar.gz",
        "wheel_sibling-1.0-cp39-abi3-win_amd64.whl",
        "legacy_sdist-1.0.tar.gz",
        "pure_b-1.0-py3-none-any.whl",
        "winonly_dep-1.0-py3-none-any.whl",  # from requires.txt's [:sys_platform == "win32"]
        *BUILD,
        "setuptools-80.0-py3-none-any.whl",
        "wheel-0.45.1-py3-none-any.whl",
    }
    output = " ".join(proc.stdout.split())
    assert "static-sdist 1.0: warmed the sdist" in output
    assert "its dependencies come from its static PEP 643 metadata" in output
    assert "wheel-sibling 1.0: warmed the sdist" in output
    assert "the METADATA of a wheel of the same release" in output
    assert (
        "legacy-sdist 1.0: warmed the sdist and its build requirements (setuptools>=40.8.0, wheel)" in output
    )
    assert "(a legacy sdist: best effort)" in output
    assert "built on this machine" not in output
    # an older release than the newest is said per target, with the reason
    assert (f"older: newer-sdist 1.0, not the newest 2.0: 2.0 has no wheel for 3.11-{LINUX},"
            " only an sdist (wheels first)") in output  # fmt: skip
    targets = {t["name"]: t for t in json.loads(report.read_text())["targets"]}
    assert targets["3.11-win_amd64"]["older"] == [
        {"project": "newer-sdist", "version": "1.0", "newest": "2.0",
         "reason": "2.0 has no wheel for 3.11-win_amd64, only an sdist (wheels first)"}
    ]  # fmt: skip

    # a re-run reads everything from the cache: still nothing built
    devpi.warmup("newer-sdist", "static-sdist", "wheel-sibling", "--python", "3.11", "--platform", LINUX,
                 check_exit=0)  # fmt: skip
    assert hook_log(dists) == hooks_before

    # offline, a machine without a compiler and with the old pip of a fresh CPython 3.11 venv
    # installs the sdists: their build requirements were warmed
    devpi.server.restart(offline=True)
    venv = tmp_path / "venv-3.11"
    run(["python3.11", "-m", "venv", str(venv)])
    old_pip = run([str(venv / "bin" / "python"), "-m", "pip", "--version"]).stdout
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
         "--index-url", devpi.simple_url, "newer-sdist", "static-sdist", "wheel-sibling"],
        env=clean_env(CC="/bin/false"), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, old_pip + proc.stdout + proc.stderr
    code = "import newer_sdist, static_sdist, wheel_sibling, pure_b; print(newer_sdist.__version__)"
    installed = run([str(venv / "bin" / "python"), "-c", code]).stdout
    assert installed.strip() == "1.0"


def test_build_only_where_nothing_can_be_read_named_and_refusable(
    devpi: DevpiScene, dists: Dists, tmp_path: Path
) -> None:
    # sdist-only: dynamic PKG-INFO, no wheel of the release, no egg-info: only its backend can tell
    hooks_before = hook_log(dists)
    proc = devpi.warmup(
        "sdist-only", "--python", "3.12", "--platform", LINUX, "--refuse-builds", check_exit=1
    )
    assert hook_log(dists) == hooks_before
    failure = [line for line in proc.stdout.splitlines() if "FAILED" in line]
    assert len(failure) == 1, proc.stdout
    assert (
        "sdist_only-1.0.tar.gz: its metadata can be learned only by running its build backend" in failure[0]
    )
    assert "--refuse-builds" in failure[0]

    # wheel-sibling's only wheel is for Windows, which no target of this run is: its metadata
    # is still read from that wheel, and only sdist-only's backend runs
    proc = devpi.warmup("sdist-only", "wheel-sibling", "--python", "3.12", "--platform", LINUX, check_exit=0)
    assert [line.split()[0] for line in hook_log(dists)[len(hooks_before) :]] == [
        "get_requires_for_build_wheel",
        "prepare_metadata_for_build_wheel",
    ]
    output = " ".join(proc.stdout.split())
    assert "sdist-only 1.0: warmed the sdist" in output
    assert "its dependencies come from metadata built on this machine by its build backend" in output
    assert "its dependencies come from the METADATA of a wheel of the same release" in output

    # pip's plain rule on request: the newest release wins although only its sdist fits
    report = tmp_path / "report.json"
    devpi.warmup("newer-sdist", "--prefer-newest", "--python", "3.12", "--platform", LINUX,
                 "--report", str(report), check_exit=0)  # fmt: skip
    assert report_files(report)[f"3.12-{LINUX}"] == {
        "newer_sdist-2.0.tar.gz",
        "pure_b-1.0-py3-none-any.whl",
        *BUILD,
    }
    # and pip's --only-binary: no sdist at all, so 1.0
    devpi.warmup("newer-sdist", "--prefer-newest", "--only-binary", ":all:", "--python", "3.12",
                 "--platform", LINUX, "--report", str(report), check_exit=0)  # fmt: skip
    assert report_files(report)[f"3.12-{LINUX}"] == {"newer_sdist-1.0-py3-none-any.whl"}


def test_devpi_whose_upstream_is_unreachable_lists_more_than_it_stores(
    devpi: DevpiScene, upstream: Upstream, tmp_path: Path, make_venv: Callable[[str], Path]
) -> None:
    """The second way of cutting devpi off: devpi keeps running, its upstream is gone. It still
    lists newer-sdist 2.0 (never fetched): pip's rule the index was warmed with,
    --prefer-binary, installs what devpi holds, while pip's plain rule picks 2.0 and fails."""
    pins = tmp_path / "pins"
    devpi.warmup("newer-sdist", "pure-a", "--python", "3.12", "--platform", LINUX, "--pin-dir", str(pins),
                 check_exit=0)  # fmt: skip
    upstream.stop()
    assert "newer_sdist-2.0.tar.gz" in devpi.links("newer-sdist")  # listed, not stored
    venv = make_venv("3.12")
    proc = pip_install(venv, "newer-sdist", index_url=devpi.simple_url, check=False)
    assert proc.returncode != 0 and "newer_sdist-2.0.tar.gz" in proc.stdout + proc.stderr
    pip_install(venv, "--prefer-binary", "newer-sdist", "pure-a", index_url=devpi.simple_url)
    checked = venv_python_ok(venv, "import newer_sdist, pure_a, pure_b; print(newer_sdist.__version__)")
    assert checked.stdout.strip() == "1.0"
    # --pin-dir: exactly the warmed files, hash-pinned, install with any pip's default rule
    pinned = (pins / f"3.12-{LINUX}.txt").read_text()
    assert [line.split(" ")[0] for line in pinned.splitlines()[1:]] == [
        "newer-sdist==1.0", "pure-a==2.0", "pure-b==1.0",
    ]  # fmt: skip
    venv = make_venv("3.12")
    pip_install(venv, "--require-hashes", "-r", str(pins / f"3.12-{LINUX}.txt"), index_url=devpi.simple_url)
    venv_python_ok(venv, "import newer_sdist, pure_a, pure_b")


GLIBC_217 = "def manylinux_compatible(major, minor, arch):\n    return (major, minor) <= (2, 17)\n"


def test_an_old_glibc_target_gets_the_newest_release_with_a_wheel_for_it(
    devpi: DevpiScene, dists: Dists, tmp_path: Path, make_venv: Callable[[str], Path]
) -> None:
    """ladder-pkg 2.0 ships only a manylinux_2_28 wheel and an sdist: a manylinux2014 (glibc
    2.17) target warms 1.0's manylinux2014 wheel, no backend runs here, the report says why;
    a venv that behaves like a glibc 2.17 machine without a compiler installs it offline."""
    hooks_before = hook_log(dists)
    report = tmp_path / "report.json"
    devpi.warmup("ladder-pkg", "--python", "3.12", "--platform", "manylinux2014_x86_64",
                 "--report", str(report), check_exit=0)  # fmt: skip
    assert hook_log(dists) == hooks_before
    [target] = json.loads(report.read_text())["targets"]
    assert {f["name"] for f in target["files"]} == {
        "ladder_pkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    }
    [older] = target["older"]
    assert (older["version"], older["newest"]) == ("1.0", "2.0")
    assert "2.0 has no wheel for 3.12-manylinux2014_x86_64, only an sdist" in older["reason"]
    devpi.server.restart(offline=True)
    venv = make_venv("3.12")
    site = next((venv / "lib").glob("python3.12/site-packages"))
    (site / "_manylinux.py").write_text(GLIBC_217)
    run([*pip_command(venv), "install", "--index-url", devpi.simple_url, "ladder-pkg"],
        env=clean_env(CC="/bin/false"))  # fmt: skip
    assert venv_python_ok(venv, "import ladder_pkg; print(ladder_pkg.__version__)").stdout.strip() == "1.0"


def test_only_binary_and_no_binary_as_pip_means_them(devpi: DevpiScene, tmp_path: Path) -> None:
    proc = devpi.warmup("sdist-only", "pure-a", "--only-binary", ":all:", "--python", "3.12", "--platform", LINUX,
                        check_exit=1)  # fmt: skip
    [failed] = [line for line in proc.stdout.splitlines() if "FAILED" in line]
    assert "no file of sdist-only fits this target" in failed, proc.stdout
    report = tmp_path / "report.json"
    # pure-b has no sdist, so pure-a 2.0 (which needs it) cannot be had: pip takes pure-a 1.0
    proc = devpi.warmup("pure-a", "--no-binary", "pure-b", "--python", "3.12", "--platform", LINUX,
                        "--report", str(report), check_exit=0)  # fmt: skip
    assert report_files(report)[f"3.12-{LINUX}"] == {"pure_a-1.0-py3-none-any.whl"}
    assert "older: pure-a 1.0, not the newest 2.0" in proc.stdout
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--no-binary static-sdist\nstatic-sdist\n")
    devpi.warmup("-r", str(requirements), "--prefer-newest", "--python", "3.12", "--platform", LINUX,
                 "--report", str(report), check_exit=0)  # fmt: skip
    assert report_files(report)[f"3.12-{LINUX}"] == {
        "static_sdist-1.0.tar.gz",
        "pure_b-1.0-py3-none-any.whl",
        *BUILD,
    }


def test_a_legacy_setup_py_sdist_installs_offline_with_the_pip_of_fresh_venvs_and_the_newest(
    devpi: DevpiScene, dists: Dists, tmp_path: Path, make_venv: Callable[[str], Path]
) -> None:
    """A setup.py project: warmed with setuptools and wheel (pip 23, bundled with CPython 3.9 and
    3.11, asks for both), it installs offline with those pips (no upgrade) and with the newest,
    without a compiler. Real build tools: the setuptools and wheel installed here, packed as wheels."""
    legacy = Upstream(tmp_path / "legacy-upstream")
    for path in (
        make_setup_py_sdist(tmp_path / "built", "legacy-real", "1.0", ["pure-b"]),
        dists["pure_b-1.0-py3-none-any.whl"],
        installed_as_wheel(tmp_path / "built", "setuptools"),
        installed_as_wheel(tmp_path / "built", "wheel"),
    ):
        legacy.add(path)
    with legacy:
        devpi.client.create_index(
            "alice/legacy-up", "type=mirror", f"mirror_url={legacy.url}", "mirror_cache_expiry=0"
        )
        devpi.client.create_index("alice/legacy", "bases=alice/legacy-up")
        proc = devpi.warmup("legacy-real", "--index", "alice/legacy", "--python", "3.9,3.11,3.13", "--platform", LINUX,
                            check_exit=0)  # fmt: skip
        assert "its PKG-INFO and egg-info requires.txt (a legacy sdist: best effort)" in " ".join(
            proc.stdout.split()
        )
        devpi.server.restart(offline=True)
    index = f"{devpi.server.url}/alice/legacy/+simple/"
    for python in ("3.9", "3.11"):
        venv = tmp_path / f"fresh-{python}"
        run([f"python{python}", "-m", "venv", str(venv)])  # with the pip CPython bundles
        proc = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
             "--index-url", index, "legacy-real"],
            env=clean_env(CC="/bin/false"), capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        venv_python_ok(venv, "import legacy_real, pure_b")
    venv = make_venv("3.13")
    run([*pip_command(venv), "install", "--index-url", index, "legacy-real"], env=clean_env(CC="/bin/false"))
    venv_python_ok(venv, "import legacy_real, pure_b")


def test_a_metadata_build_here_runs_once_and_devpi_keeps_nothing_it_installed(
    devpi: DevpiScene, dists: Dists, tmp_path: Path
) -> None:
    """host-build has dynamic metadata and nothing to read it from: its backend runs here, once
    for both targets, in a build environment for this Linux machine that installs
    linux-only-helper. That wheel is read around devpi: devpi does not store it, no target lists
    it, and it is not listed apart either."""
    hooks_before = hook_log(dists)
    report = tmp_path / "report.json"
    proc = devpi.warmup("host-build", "--python", "3.12", "--platform", "win_amd64,macosx_11_0_arm64",
                        "--jobs", "2", "--report", str(report), check_exit=0)  # fmt: skip
    hooks = [line.split()[0] for line in hook_log(dists)[len(hooks_before) :]]
    assert hooks == ["get_requires_for_build_wheel", "prepare_metadata_for_build_wheel"], hooks
    assert "host-build 1.0: warmed the sdist" in proc.stdout
    assert "metadata built on this machine by its build backend" in " ".join(proc.stdout.split())
    data = json.loads(report.read_text())
    assert report_files(report) == {
        "3.12-win_amd64": {"host_build-1.0.tar.gz", *BUILD},
        "3.12-macosx_11_0_arm64": {"host_build-1.0.tar.gz", *BUILD},
    }
    assert data["extra_files"] == []
    helper = devpi.links("linux-only-helper")["linux_only_helper-1.0-py3-none-any.whl"]
    assert not devpi.is_cached(helper), "devpi stores what the build here installed for itself"
    for name in ("host_build-1.0.tar.gz", *BUILD):
        project = name.split("-")[0].replace("_", "-")
        assert devpi.is_cached(devpi.links(project)[name]), name

    # the next run reads the built metadata from the cache: no backend runs
    hooks_before = hook_log(dists)
    devpi.warmup("host-build", "--python", "3.12", "--platform", "win_amd64", check_exit=0)
    assert hook_log(dists) == hooks_before
