"""The servers a benchmark talks to: devpi-servers mirroring PyPI or the local upstream, and that upstream."""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from .log import say
from .support import (
    ROOT_PASSWORD,
    DevpiClient,
    DevpiScene,
    DevpiServer,
    Upstream,
    executable,
    free_port,
    run,
    setup_scene,
)

BENCH_USER, BENCH_PASSWORD = "bench", "bench-pw-1"


def pypi_client(workdir: Path) -> tuple[DevpiServer, DevpiClient, str]:
    """A throwaway devpi-server whose root/pypi mirrors PyPI, with bench/pypi (bases=root/pypi) in use.

    Its serverdir is ``workdir / "fill-server"``; returns the server, the logged-in client and
    the simple URL of bench/pypi.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    serverdir = workdir / "fill-server"
    run([executable("devpi-init"), "--serverdir", str(serverdir)], timeout=600)
    server = DevpiServer(serverdir, free_port())
    server.start()
    client = DevpiClient(workdir / "fill-client", server)
    client.use(server.url)
    client.login("root", ROOT_PASSWORD)
    client.create_user(BENCH_USER, BENCH_PASSWORD, "bench@example.invalid")
    client.login(BENCH_USER, BENCH_PASSWORD)
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


def provide_core_metadata(client: DevpiClient) -> None:
    """Turn on ``mirror_provides_core_metadata`` for root/pypi (as root), then log the bench user back in."""
    client.login("root", ROOT_PASSWORD)
    client.run("index", "root/pypi", "mirror_provides_core_metadata=True")
    client.login(BENCH_USER, BENCH_PASSWORD)


def fresh_scene(workdir: Path, upstream: Upstream) -> DevpiScene:
    """A new devpi-server with alice/upstream mirroring the local upstream and alice/dev in use."""
    server = DevpiServer(workdir / "server", free_port())
    server.init()
    return setup_scene(server, DevpiClient(workdir / "client", server), upstream.url)


def serve_files(files: Path) -> Upstream:
    """Serve the folder ``files`` as a local simple index; every file is hashed before anything is timed."""
    upstream = Upstream(files).start()
    served = upstream.files()
    size = sum(f.path.stat().st_size for f in served)
    say(f"local upstream {upstream.url}: {len(served)} files, {size / 1e6:.0f} MB")
    return upstream


def server_pid(server: DevpiServer) -> int:
    """The process id of a started devpi-server (0 if it is not running)."""
    proc = getattr(server, "_proc", None)
    return proc.pid if proc is not None else 0


def server_requests(server: DevpiServer) -> int:
    """Requests devpi-server logged so far."""
    return len(re.findall(r"\[req\d+\] (?:GET|HEAD|POST|PUT)", server.log_text()))


def stored(server: DevpiServer) -> tuple[int, int]:
    """(files, bytes) the devpi-server stores (its +files tree)."""
    paths = [p for p in (server.serverdir / "+files").rglob("*") if p.is_file()]
    return len(paths), sum(p.stat().st_size for p in paths)
