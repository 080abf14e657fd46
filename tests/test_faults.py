"""Faults during a run: a full disk under --dest, Ctrl-C. Other targets go on; nothing is half-written."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.devpi import DevpiScene, clean_env, executable, run
from tests.support.dists import make_wheel
from tests.support.upstream import Upstream

LINUX = "manylinux_2_28_x86_64"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 kB file system (tmpfs), as a full disk under --dest."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    mounted = run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)], check=False)
    if mounted.returncode != 0:  # not root, or a container that forbids it
        pytest.skip(
            f"a full disk needs a small tmpfs, and mount is not permitted here: {mounted.stderr.strip()}"
        )
    try:
        yield mountpoint
    finally:
        run(["umount", str(mountpoint)])


def test_a_full_disk_under_dest_is_reported_and_a_rerun_resumes(
    devpi: DevpiScene, upstream: Upstream, tmp_path: Path, small_disk: Path
) -> None:
    big = make_wheel(tmp_path / "big", "big-pkg", "1.0", files={"big_pkg/blob.bin": os.urandom(200_000)})
    upstream.add(big)
    proc = devpi.warmup("pure-a", "big-pkg", "--python", "3.12", "--platform", LINUX, "--dest", str(small_disk),
                        check_exit=1)  # fmt: skip
    line = next(line for line in proc.stdout.splitlines() if line.startswith(f"3.12-{LINUX}"))
    assert (
        "INCOMPLETE" in line and f"{big.name}: cannot write to {small_disk}: No space left on device" in line
    )
    assert "Traceback" not in proc.stdout + proc.stderr
    # the small files are written whole, unless the big one filled the disk while they were
    # being written (downloads run at once): then they are named too; nothing half-written stays
    small = ["pure_a-2.0-py3-none-any.whl", "pure_b-1.0-py3-none-any.whl"]
    written = {p.name for p in small_disk.iterdir()}
    assert written <= set(small), written
    for name in set(small) - written:
        assert f"{name}: cannot write to {small_disk}: No space left on device" in line, line

    # devpi holds everything all the same; with room on the disk the re-run completes the wheelhouse
    run(["mount", "-o", "remount,size=1m", str(small_disk)])
    devpi.warmup("pure-a", "big-pkg", "--python", "3.12", "--platform", LINUX, "--dest", str(small_disk),
                 check_exit=0)  # fmt: skip
    assert (small_disk / big.name).read_bytes() == big.read_bytes()
    assert {p.name for p in small_disk.iterdir()} == {*small, big.name}


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_exits_130_without_a_traceback_or_half_written_files(
    devpi: DevpiScene, tmp_path: Path
) -> None:
    dest = tmp_path / "wheelhouse"
    argv = [executable("devpi"), "--clientdir", str(devpi.clientdir), "warmup", "pure-a", "needs-win", "sdist-only",
            "--python", "3.9,3.10,3.12,3.13", "--platform", f"{LINUX},win_amd64", "--dest", str(dest)]  # fmt: skip
    # a shell's background job inherits SIGINT ignored, and Python keeps it so: as on a terminal,
    # the command starts with Ctrl-C's default action, whoever started this test (the function
    # only sets a signal's disposition, which is safe between fork and exec)
    process = subprocess.Popen(argv, env=clean_env(PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True,
                               preexec_fn=_default_sigint)  # noqa: PLW1509  # fmt: skip
    assert process.stdout is not None
    first = process.stdout.readline()
    assert first.startswith("warming "), first
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    output = first + process.stdout.read()
    assert process.wait(timeout=120) == 130, output
    assert "devpi warmup: interrupted" in output
    assert "Traceback" not in output
    assert not dest.exists() or not [p for p in dest.iterdir() if p.name.startswith(".")]


def _our_pips(tmp: Path) -> list[str]:
    """Command lines of pip processes that run ``devpi_client_warmup.resolve._pip`` now, for a
    run whose ``TMPDIR`` is ``tmp`` (its report path is there; other tests' pips are not)."""
    found = []
    for entry in os.scandir("/proc"):
        try:
            argv = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "devpi_client_warmup.resolve._pip" in argv and str(tmp) in argv:
            found.append(argv.replace("\0", " "))
    return found


def test_sigterm_to_the_main_process_stops_pip_and_leaves_nothing(
    devpi: DevpiScene, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.stall_project("pure-b", 60)  # pip waits for it (through the gateway and devpi)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    argv = [executable("devpi"), "--clientdir", str(devpi.clientdir), "warmup", "pure-a",
            "--python", "3.12,3.13", "--platform", LINUX]  # fmt: skip
    process = subprocess.Popen(argv, env=clean_env(PYTHONUNBUFFERED="1", TMPDIR=str(tmp)),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _our_pips(tmp) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _our_pips(tmp), "pip never started"
        time.sleep(1)  # pip is waiting for pure-b's page
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)  # the main process only, as a service manager does
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
        upstream.heal("project:pure-b")
    assert process.returncode == 143, output
    assert time.monotonic() - started < 15, "pip was not stopped"
    lines = [line for line in output.splitlines() if line.strip()]
    assert (
        lines[-1] == "devpi warmup: terminated; files already fetched are kept, nothing partial was written"
    )
    assert "Traceback" not in output and "FAILED" not in output, output
    assert _our_pips(tmp) == []
    assert list(tmp.iterdir()) == []  # the run's folder (netrc, spool, pip's temp files) is gone


STAND_IN_MARKERS = """

# the stand-in: markers are evaluated for this machine whatever default_environment becomes
_host_environment = default_environment()
_evaluate = Marker.evaluate


def _evaluate_for_the_host(self, environment=None, *args, **kwargs):
    return _evaluate(self, {**_host_environment, **(environment or {})}, *args, **kwargs)


Marker.evaluate = _evaluate_for_the_host
"""


def test_a_pip_whose_markers_ignore_the_target_is_refused_by_name(devpi: DevpiScene, tmp_path: Path) -> None:
    """If a pip release stopped asking ``default_environment``, markers would silently be the
    host's: the tool's probe stops such a pip for every target, naming its version."""
    purelib = Path(sysconfig.get_paths()["purelib"])
    venv = tmp_path / "stand-in"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    site = Path(
        run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    shutil.copytree(purelib / "pip", site / "pip")  # found first: this environment's own site-packages
    with (site / "pip" / "_vendor" / "packaging" / "markers.py").open("a") as markers:
        markers.write(STAND_IN_MARKERS)
    (site / "everything-else.pth").write_text(f"import site; site.addsitedir({str(purelib)!r})\n")
    argv = [str(python), "-c", "import sys; from devpi.main import main; sys.exit(main())", "--clientdir", str(devpi.clientdir), "warmup", "pure-a",
            "--python", "3.12", "--platform", "win_amd64,macosx_11_0_arm64"]  # fmt: skip
    proc = run(argv, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    version = importlib.metadata.version("pip")
    for platform in ("win_amd64", "macosx_11_0_arm64"):
        assert (
            f"3.12-{platform}: FAILED: unsupported pip {version}: it does not evaluate markers for the target"
            in proc.stdout
        ), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
