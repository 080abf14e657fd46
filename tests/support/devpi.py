"""Drive a real devpi-server and the real ``devpi`` client as subprocesses."""

from __future__ import annotations

import base64
import errno
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable
from urllib.parse import urljoin

import requests

ROOT_PASSWORD = ""
DEFAULT_USER = "alice"
DEFAULT_PASSWORD = "secret-pw-1"
DEFAULT_EMAIL = "alice@example.com"


def clean_env(**extra: str) -> dict[str, str]:
    """``os.environ`` without the machine's pip configuration.

    Drops every ``PIP_*`` variable, points ``PIP_CONFIG_FILE`` at
    ``os.devnull`` (no pip.conf is read), disables pip's cache and its
    self version check (which would query the index for ``pip``), then
    applies ``extra``.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_NO_CACHE_DIR"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def executable(name: str) -> str:
    """Console script ``name`` next to ``sys.executable``, else from PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"executable {name!r} not found")
    return found


def free_port() -> int:
    """A free port below the kernel's ephemeral range, for a server that is restarted on it.

    A port the kernel handed out (``bind(0)``) can be taken, while its server is stopped, by
    another process's ``bind(0)`` or outgoing connection: the restart then fails (seen in CI).
    Ports below the range are never handed out; one is chosen at random and tried.
    """
    # where the range starts below 20000, ports from 10000 up are used, some of them in it
    low = max(_ephemeral_low(), 20000)
    while True:
        port = 10000 + secrets.randbelow(low - 10000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return port


def _ephemeral_low() -> int:
    """The first port of Linux's ephemeral range (32768 where it cannot be read)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with a clean env; raise AssertionError with output on failure."""
    proc = subprocess.run(
        list(argv),
        check=False,
        input=input,
        env=dict(env) if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    if check and proc.returncode != 0:
        raise AssertionError(describe(proc))
    return proc


def describe(proc: subprocess.CompletedProcess[str]) -> str:
    """Human readable command, exit code and output of a finished process."""
    cmd = " ".join(str(a) for a in proc.args)
    return (
        f"command: {cmd}\nexit code: {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    )


class DevpiServer:
    """A devpi-server process on 127.0.0.1:``port`` using ``serverdir``."""

    def __init__(self, serverdir: Path, port: int) -> None:
        self.serverdir = serverdir
        self.port = port
        self.logfile = serverdir / "devpi-server.log"
        self.secretfile = serverdir / "secret"
        self.offline = False
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def init(self) -> None:
        """``devpi-init --no-root-pypi``: root with an empty password, no PyPI mirror."""
        run([executable("devpi-init"), "--serverdir", str(self.serverdir), "--no-root-pypi"])
        # as a deployed devpi has: login tokens stay valid when the server is restarted
        fd = os.open(self.secretfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as secret:
            secret.write(secrets.token_urlsafe(48))

    def argv(self, offline: bool = False) -> list[str]:
        """The command line ``start`` runs."""
        argv = [
            executable("devpi-server"),
            "--serverdir", str(self.serverdir),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--argon2-memory-cost", "8",
            "--argon2-parallelism", "1",
            "--argon2-time-cost", "1",
            "--enable-core-metadata",  # PEP 658 where an index provides it (mirror_provides_core_metadata)
            "--indexer-backend", "null",  # devpi-web's search index of each new mirror: no test reads it
        ]  # fmt: skip
        if self.secretfile.is_file():  # not in a server folder made by other means
            argv += ["--secretfile", str(self.secretfile)]
        if offline:
            argv.append("--offline-mode")
        return argv

    def start(self, offline: bool = False, timeout: float = 60) -> None:
        assert self._proc is None, "server already running"
        argv = self.argv(offline)
        self.offline = offline
        self._log = open(self.logfile, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=clean_env())
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise AssertionError(f"devpi-server exited with {self._proc.returncode}\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/+api", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"devpi-server not ready after {timeout}s\n{self.log_tail()}")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self, offline: bool = True) -> None:
        self.stop()
        self.start(offline=offline)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


class DevpiClient:
    """The real ``devpi`` command line client with its own ``clientdir``."""

    def __init__(self, clientdir: Path, server: DevpiServer) -> None:
        self.clientdir = clientdir
        self.server = server

    def run(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``devpi --clientdir DIR ARGS`` (``--clientdir`` goes first so a
        subcommand taking remainder arguments cannot swallow it)."""
        argv = [executable("devpi"), "--clientdir", str(self.clientdir), *args]
        return run(argv, check=check, input=input, env=env if env is not None else clean_env())

    def use(self, url: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("use", url, *args)

    def login(self, user: str, password: str) -> subprocess.CompletedProcess[str]:
        return self.run("login", user, "--password", password)

    def logoff(self) -> subprocess.CompletedProcess[str]:
        return self.run("logoff")

    def create_user(self, user: str, password: str, email: str) -> subprocess.CompletedProcess[str]:
        return self.run("user", "-c", user, f"password={password}", f"email={email}")

    def create_index(self, name: str, *options: str) -> subprocess.CompletedProcess[str]:
        return self.run("index", "-c", name, *options)

    def getjson(self, path: str) -> subprocess.CompletedProcess[str]:
        return self.run("getjson", path)


@dataclass
class DevpiScene:
    """Server + client with ``alice/upstream`` (mirror) and ``alice/dev`` in use."""

    server: DevpiServer
    client: DevpiClient
    mirror_url: str
    user: str = DEFAULT_USER
    password: str = DEFAULT_PASSWORD
    mirror_index: str = field(init=False)
    dev_index: str = field(init=False)

    def __post_init__(self) -> None:
        self.mirror_index = f"{self.user}/upstream"
        self.dev_index = f"{self.user}/dev"

    @property
    def clientdir(self) -> Path:
        return self.client.clientdir

    @property
    def index_url(self) -> str:
        return f"{self.server.url}/{self.dev_index}"

    @property
    def simple_url(self) -> str:
        return f"{self.index_url}/+simple/"

    @property
    def mirror_simple_url(self) -> str:
        return f"{self.server.url}/{self.mirror_index}/+simple/"

    def links(self, project: str, index: str | None = None) -> dict[str, str]:
        """Files on ``index``'s (default: alice/dev) simple page: filename -> URL.

        A project devpi does not know (404, e.g. never cached when offline) has none.
        """
        page_url = f"{self.server.url}/{index or self.dev_index}/+simple/{project}/"
        response = requests.get(page_url, timeout=30)
        if response.status_code == 404:
            return {}
        response.raise_for_status()
        anchors = re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', response.text)
        return {name: urljoin(page_url, href.split("#", 1)[0]) for href, name in anchors}

    def file_meta(self, file_url: str) -> dict[str, Any]:
        """``GET +f/...`` with ``Accept: application/json`` (the releasefilemeta result)."""
        response = requests.get(file_url, headers={"Accept": "application/json"}, timeout=30)
        response.raise_for_status()
        return dict(response.json()["result"])

    def is_cached(self, file_url: str) -> bool:
        """A mirror file is cached once its meta has ``last_modified``."""
        return "last_modified" in self.file_meta(file_url)

    def wait_cached(self, file_url: str, timeout: float = 10) -> None:
        """Wait until ``file_url`` is cached: devpi commits a fetched file
        only after the last byte was sent to the client."""
        wait_for(lambda: self.is_cached(file_url), timeout, f"{file_url} never got cached")

    def warmup(
        self, *args: str, check_exit: int | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``devpi warmup ARGS``; assert the exit code if ``check_exit`` is given."""
        proc = self.client.run("warmup", *args, check=False, env=env)
        if check_exit is not None and proc.returncode != check_exit:
            raise AssertionError(f"expected exit code {check_exit}\n{describe(proc)}")
        return proc


def setup_scene(server: DevpiServer, client: DevpiClient, mirror_url: str) -> DevpiScene:
    """Start ``server`` (already initialised) and create the standard users/indexes."""
    scene = DevpiScene(server=server, client=client, mirror_url=mirror_url)
    if not server.running:
        server.start()
    client.use(server.url)
    create_user_and_indexes(scene)
    client.use(scene.index_url)
    return scene


def create_user_and_indexes(scene: DevpiScene) -> None:
    """As root, create the scene's user; as that user, its mirror index and the index inheriting it."""
    client = scene.client
    client.login("root", ROOT_PASSWORD)
    client.create_user(scene.user, scene.password, DEFAULT_EMAIL)
    client.login(scene.user, scene.password)
    client.create_index(
        scene.mirror_index, "type=mirror", f"mirror_url={scene.mirror_url}", "mirror_cache_expiry=0"
    )
    client.create_index(scene.dev_index, f"bases={scene.mirror_index}", "volatile=True")


def rest(
    server: DevpiServer, method: str, path: str, body: Any = None, auth: tuple[str, str] | None = None
) -> dict[str, Any]:
    """A call of devpi-server's JSON API (what ``devpi`` does, without starting a process)."""
    headers = {"Accept": "application/json"}
    if auth is not None:
        headers["X-Devpi-Auth"] = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    response = requests.request(method, server.url + path, json=body, headers=headers, timeout=60)
    assert response.status_code in (200, 201), f"{method} {path}: {response.status_code} {response.text}"
    return dict(response.json()) if response.content else {}


def rest_login(server: DevpiServer, user: str, password: str) -> tuple[str, str]:
    """(user, token) for ``X-Devpi-Auth``."""
    return user, str(
        rest(server, "POST", "/+login", {"user": user, "password": password})["result"]["password"]
    )


@dataclass(frozen=True)
class SharedAccount:
    """alice on a server shared by the tests of a session: created once, with a ``devpi``
    client state (``devpi use``, ``devpi login``) that each test copies, and her token for
    the REST API. Each test makes its own indexes of hers and leaves none behind."""

    server: DevpiServer
    clientdir: Path
    auth: tuple[str, str]
    root: tuple[str, str]  # deletes the indexes (alice's DELETE gets a 403)

    @classmethod
    def create(cls, server: DevpiServer, clientdir: Path) -> SharedAccount:
        root = rest_login(server, "root", ROOT_PASSWORD)
        rest(server, "PUT", f"/{DEFAULT_USER}", {"password": DEFAULT_PASSWORD, "email": DEFAULT_EMAIL}, root)
        auth = rest_login(server, DEFAULT_USER, DEFAULT_PASSWORD)
        dev = f"/{DEFAULT_USER}/dev"  # each test makes it anew; ``devpi use`` needs it now
        rest(server, "PUT", dev, {"type": "stage", "bases": [], "volatile": True}, auth)
        client = DevpiClient(clientdir, server)
        client.use(server.url + dev)
        client.login(DEFAULT_USER, DEFAULT_PASSWORD)
        rest(server, "DELETE", dev, auth=root)
        return cls(server, clientdir, auth, root)


def setup_shared_scene(account: SharedAccount, clientdir: Path, mirror_url: str) -> DevpiScene:
    """On the shared server: the scene's indexes over the REST API, and a copy of the account's
    client state in ``clientdir``: alice logged in, alice/dev in use."""
    server = account.server
    shutil.copytree(account.clientdir, clientdir)
    scene = DevpiScene(server=server, client=DevpiClient(clientdir, server), mirror_url=mirror_url)
    # a mirror of its own name per test: a re-created alice/upstream was seen (once, in CI) to
    # fetch a file of the same name and sha256 from the upstream of the test before, long gone
    scene.mirror_index = f"{scene.user}/upstream-{secrets.token_hex(4)}"
    create_indexes(scene, account.auth)
    return scene


def create_indexes(scene: DevpiScene, auth: tuple[str, str]) -> None:
    """Over the REST API, as ``auth``: the scene's mirror of ``mirror_url`` and its dev index
    inheriting it."""
    mirror = {"type": "mirror", "mirror_url": scene.mirror_url, "mirror_cache_expiry": 0}
    rest(scene.server, "PUT", f"/{scene.mirror_index}", mirror, auth)
    dev = {"type": "stage", "bases": [scene.mirror_index], "volatile": True}
    rest(scene.server, "PUT", f"/{scene.dev_index}", dev, auth)


def remove_scene(scene: DevpiScene, account: SharedAccount) -> None:
    """Leave the shared server as the next test expects it: online, alice without indexes
    (those a base of another go last)."""
    server = scene.server
    _online(server)
    indexes = rest(server, "GET", f"/{account.auth[0]}", auth=account.auth)["result"]["indexes"]
    bases = {base for config in indexes.values() for base in config.get("bases", ())}
    for name in sorted(indexes, key=lambda name: f"{account.auth[0]}/{name}" in bases):
        rest(server, "DELETE", f"/{account.auth[0]}/{name}", auth=account.root)


def remove_user(scene: DevpiScene, account: SharedAccount) -> None:
    """Remove the scene's own user and her indexes from the shared server, online again."""
    _online(scene.server)
    rest(scene.server, "DELETE", f"/{scene.user}", auth=account.root)


def _online(server: DevpiServer) -> None:
    """Start ``server`` online if a test stopped it or restarted it offline."""
    if not server.running or server.offline:
        server.stop()
        server.start()


def wait_for(predicate: Callable[[], bool], timeout: float = 10, message: str = "") -> None:
    """Poll ``predicate`` until it is true; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(0.05)
