"""End-to-end demo of ``devpi warmup`` on a throwaway local devpi-server.

Starts devpi-server (its root/pypi mirrors the public PyPI), creates ``demo/dev``,
warms it for Python 3.9 and 3.12 on manylinux and Windows, restarts the server with
``--offline-mode``, installs the requirements into fresh python3.9 and python3.12 venvs
from the index alone (and, for Windows, lets pip resolve them with Windows' tags), and
ends with a table per target.  Run it with ``./run demo`` or ``python demo/demo.py``.
Exit code 0 when every step passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from devpi_client_warmup.matrix import Platform, Python, Target

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the tests' devpi-server helper, as the benchmarks use it
    sys.path.insert(0, str(REPO))

from tests.support.devpi import DevpiServer, free_port

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-pw"
DEMO_INDEX = f"{DEMO_USER}/dev"
PYTHONS = ("3.9", "3.12")
PLATFORMS = ("manylinux_2_17_x86_64", "win_amd64")
REQUIREMENTS = """\
requests
colorama; sys_platform == "win32"
tomli; python_version < "3.11"
six
"""
SECRETS = (DEMO_PASSWORD,)


class StepFailed(Exception):
    """A step the rest of the demo cannot do without failed."""


def banner(text: str) -> None:
    """Print a step heading."""
    print(f"\n=== {text} ===", flush=True)


def shown(argv: Sequence[str]) -> str:
    """``argv`` as a shell line, with the demo password masked."""
    words = []
    for arg in argv:
        for secret in SECRETS:
            arg = arg.replace(secret, "***")
        words.append(arg)
    return shlex.join(words)


def tool(name: str) -> str:
    """The console script ``name`` next to ``sys.executable``."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise StepFailed(f"{name} not found next to {sys.executable}")
    return str(path)


def clean_env() -> dict[str, str]:
    """``os.environ`` without the machine's pip and devpi-client settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "DEVPI_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    return env


def run(
    argv: Sequence[str], timeout: float = 300, capture: bool = False, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Print and run ``argv`` (output streamed unless ``capture``); never raises on exit code."""
    print(f"$ {shown(argv)}", flush=True)
    try:
        return subprocess.run(
            list(argv), env={**clean_env(), **(extra_env or {})}, timeout=timeout, text=True, check=False,
            stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise StepFailed(f"timed out after {timeout:.0f} s: {shown(argv)}") from exc


def check(argv: Sequence[str], timeout: float = 300) -> None:
    """Run ``argv``; raise StepFailed if it exits non-zero."""
    code = run(argv, timeout).returncode
    if code != 0:
        raise StepFailed(f"exit code {code}: {shown(argv)}")


def devpi(clientdir: Path, *args: str) -> list[str]:
    """A ``devpi`` command line using ``clientdir``."""
    return [tool("devpi"), *args, "--clientdir", str(clientdir)]


def wait_for_mirror(server: DevpiServer, timeout: float = 300) -> None:
    """A new root/pypi answers 404 for every project until it has loaded PyPI's project list."""
    deadline = time.monotonic() + timeout
    while requests.get(f"{server.url}/root/pypi/+simple/six/", timeout=60).status_code != 200:
        if time.monotonic() > deadline:
            raise StepFailed(f"root/pypi did not list 'six' within {timeout:.0f} s")
        time.sleep(2)


def set_up_index(server: DevpiServer, clientdir: Path) -> None:
    """Log in as root, create the demo user and ``demo/dev`` (bases=root/pypi), and use it."""
    banner(f"create user {DEMO_USER} and index {DEMO_INDEX}")
    check(devpi(clientdir, "use", server.url))
    check(devpi(clientdir, "login", "root", "--password", ""))
    check(
        devpi(clientdir, "user", "-c", DEMO_USER, f"password={DEMO_PASSWORD}", "email=demo@example.invalid")
    )
    check(devpi(clientdir, "login", DEMO_USER, "--password", DEMO_PASSWORD))
    check(devpi(clientdir, "index", "-c", DEMO_INDEX, "bases=root/pypi"))
    check(devpi(clientdir, "use", DEMO_INDEX))


def warm(workdir: Path, clientdir: Path) -> bool:
    """Run ``devpi warmup`` for the demo matrix; True if it exited 0."""
    requirements = workdir / "requirements.txt"
    requirements.write_text(REQUIREMENTS, encoding="utf-8")
    banner("devpi warmup")
    print(f"{requirements}:\n{REQUIREMENTS}", flush=True)
    argv = ["warmup", "-r", str(requirements), "--python", ",".join(PYTHONS)]
    for platform in PLATFORMS:
        argv += ["--platform", platform]
    argv += ["--report", str(workdir / "report.json")]
    started = time.monotonic()
    code = run(devpi(clientdir, *argv), timeout=600).returncode
    print(f"devpi warmup exited with {code} after {time.monotonic() - started:.1f} s", flush=True)
    return code == 0


@dataclass
class Row:
    """One line of the final table: a target, what was warmed for it, and how the offline install went."""

    target: str
    files: int
    result: str = "not tried"
    versions: str = ""
    ok: bool = False


def offline_install(python: str, platform: str, workdir: Path, server: DevpiServer) -> tuple[bool, str, str]:
    """Install the requirements for one target from the offline index: into a real venv where
    the target is this machine, else ``pip install --dry-run`` with the target's tags.
    Returns (ok, what was done, the versions pip chose)."""
    interpreter = shutil.which(f"python{python}")
    if interpreter is None:
        return False, f"python{python} not on PATH", ""
    index = f"{server.url}/{DEMO_INDEX}/+simple/"
    report = workdir / f"install-{python}-{platform}.json"
    pip_args = [
        "install", "--disable-pip-version-check", "--index-url", index,
        "-r", str(workdir / "requirements.txt"), "--report", str(report),
    ]  # fmt: skip
    if platform.startswith("manylinux") and sys.platform == "linux":
        venv = workdir / f"venv-{python}"
        steps = [
            [interpreter, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", *pip_args],
        ]
        done = "installed in a venv"
        env = {}
    else:  # pip with the target's tags and markers (as the warmup resolved them), not this machine's
        target = Target(Python.parse(python), Platform.parse(platform))
        env = {"DEVPI_WARMUP_MARKERS": json.dumps(target.marker_environment)}
        steps = [[
            sys.executable, "-m", "devpi_client_warmup.resolve._pip", *pip_args, "--dry-run", "--ignore-installed",
            "--only-binary", ":all:", *target.pip_options,
        ]]  # fmt: skip
        done = "resolves (pip --dry-run, its tags)"
    for argv in steps:
        try:
            code = run(argv, extra_env=env).returncode
        except StepFailed as exc:
            return False, str(exc), ""
        if code != 0:
            return False, f"pip exited with {code}", ""
    installed = json.loads(report.read_text(encoding="utf-8"))["install"]
    versions = sorted(f"{item['metadata']['name']} {item['metadata']['version']}" for item in installed)
    return True, done, ", ".join(versions)


def read_report(report_path: Path) -> list[Row]:
    """A row per target of ``devpi warmup``'s JSON report."""
    try:
        targets = json.loads(report_path.read_text(encoding="utf-8"))["targets"]
    except (OSError, ValueError, KeyError) as exc:
        raise StepFailed(f"cannot read {report_path}: {exc}") from exc
    return [Row(f"{t['python']} {t['platform']}", len(t["files"])) for t in targets]


def print_table(rows: list[Row]) -> None:
    """Per target: files warmed, the offline install, the versions installed."""
    banner("per target, with devpi offline")
    header = ("target", "files", "offline install", "versions installed")
    table = [header] + [
        (r.target, str(r.files), ("ok: " if r.ok else "FAILED: ") + r.result, r.versions) for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[3], flush=True)


def demo(workdir: Path) -> list[str]:
    """Run every step; the names of those that failed."""
    failed: list[str] = []
    serverdir, clientdir = workdir / "server", workdir / "client"
    server = DevpiServer(serverdir, free_port())
    try:
        banner("start devpi-server (root/pypi mirrors PyPI)")
        check([tool("devpi-init"), "--serverdir", str(serverdir)])
        start(server)
        wait_for_mirror(server)
        set_up_index(server, clientdir)
        if not warm(workdir, clientdir):
            failed.append("devpi warmup")
        rows = read_report(workdir / "report.json")
        banner("restart devpi-server with --offline-mode")
        server.stop()
        start(server, offline=True)
        for row in rows:
            python, platform = row.target.split()
            banner(f"offline: {row.target}")
            row.ok, row.result, row.versions = offline_install(python, platform, workdir, server)
            if not row.ok:
                failed.append(f"offline install for {row.target}")
        print_table(rows)
    except StepFailed as exc:
        print(f"\nFAIL: {exc}", flush=True)
        failed.append("setup")
    finally:
        server.stop()
    if failed:
        print(f"--- devpi-server log (tail) ---\n{server.log_tail(30)}", flush=True)
    return failed


def start(server: DevpiServer, offline: bool = False) -> None:
    """Print and start devpi-server, logging to ``serverdir/devpi-server.log``; StepFailed if it
    does not answer."""
    print(f"$ {shown(server.argv(offline))} >>{server.logfile} 2>&1 &", flush=True)
    try:
        server.start(offline)
    except AssertionError as exc:  # what the helper raises, with the log's tail
        raise StepFailed(str(exc)) from None
    print(f"devpi-server is up at {server.url}", flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The demo's command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo in a temporary directory; 0 if every step passed."""
    args = parse_args(argv)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="devpi-warmup-demo-"))
    print(f"working directory: {workdir}" + ("" if args.keep else " (removed at the end; --keep keeps it)"))
    try:
        failed = demo(workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    banner("result")
    elapsed = f"{time.monotonic() - started:.0f} s"
    if failed:
        print(f"demo FAILED after {elapsed}: {', '.join(failed)}", flush=True)
        return 1
    print(f"demo PASSED after {elapsed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
