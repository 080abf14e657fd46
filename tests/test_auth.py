"""``devpi warmup`` against read-protected devpi: devpi-lockdown behind a proxy, with and without
the proxy's own HTTP Basic auth; credentials never leak into output, report or process argv."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import threading
from pathlib import Path
from typing import Callable
from urllib.parse import quote, quote_plus, unquote, urlsplit

import requests

from tests.conftest import GATE_AUTH
from tests.support.authproxy import LockedScene
from tests.support.devpi import DevpiClient, DevpiScene, clean_env, describe
from tests.support.forwardproxy import forward_proxy
from tests.support.upstream import Upstream
from tests.support.venvs import pip_install, venv_python_ok

LINUX = "manylinux_2_28_x86_64"
INTEL_MAC = "macosx_11_0_x86_64"  # natpkg has no wheel (and no sdist) for it


def output_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    text = proc.stdout + proc.stderr
    return [line for line in text.splitlines() if line.strip()]


def test_warmup_as_logged_in_user_then_install_offline_through_lockdown(
    locked_devpi: LockedScene, make_venv: Callable[[str], Path]
) -> None:
    scene, proxy = locked_devpi, locked_devpi.proxy
    assert proxy is not None
    # the proxy is what protects reads: devpi-server alone serves anyone
    assert requests.get(scene.proxy_simple_url, timeout=30).status_code == 401
    assert requests.get(scene.simple_url, timeout=30).status_code == 200
    # behind the proxy devpi generates URLs of the proxy (X-outside-url)
    api = requests.get(f"{scene.proxy_index_url}/+api", timeout=30).json()["result"]
    assert api["simpleindex"] == scene.proxy_simple_url and api["login"] == f"{proxy.url}/+login"

    proxy.clear_log()
    proc = scene.warmup("pure-a", "--python", "3.12", "--platform", LINUX, check_exit=0)
    assert f"3.12-{LINUX}: ok (2 files" in proc.stdout
    assert scene.proxy_simple_url in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    # every request of the run went through the lockdown with alice's token, and none was refused
    records = proxy.records()
    fetched = {r.path.rsplit("/", 1)[1] for r in records if "/+f/" in unquote(r.path)}
    assert fetched == {"pure_a-2.0-py3-none-any.whl", "pure_b-1.0-py3-none-any.whl"}
    assert all(r.devpi_auth and r.status == 200 for r in records), records

    scene.server.restart(offline=True)  # devpi lists only what it stores
    assert set(scene.links("pure-a")) == {"pure_a-2.0-py3-none-any.whl"}
    assert set(scene.links("pure-b")) == {"pure_b-1.0-py3-none-any.whl"}

    # pip on a target machine: refused without credentials, installs with alice's password
    venv = make_venv("3.12")
    proxy.clear_log()
    anonymous = pip_install(venv, "--no-input", "pure-a", index_url=scene.proxy_simple_url, check=False)
    assert anonymous.returncode != 0, describe(anonymous)
    refused = {r.status for r in proxy.records("/+simple/")}
    assert refused == {401}, proxy.records()
    proxy.clear_log()
    host = proxy.url[len("http://") :]
    index_url = f"http://{scene.user}:{quote(scene.password, safe='')}@{host}/{scene.dev_index}/+simple/"
    pip_install(venv, "--no-input", "pure-a", index_url=index_url)
    assert venv_python_ok(venv, "import pure_a, pure_b; print(pure_a.__version__)").stdout.strip() == "2.0"
    installed = proxy.records()
    assert any("/+f/" in unquote(r.path) for r in installed), installed  # pip quotes "+" as %2B
    assert all(r.authorization and not r.devpi_auth and r.status == 200 for r in installed), installed


def test_after_logoff_warmup_says_to_log_in(locked_devpi: LockedScene, upstream: Upstream) -> None:
    scene, proxy = locked_devpi, locked_devpi.proxy
    assert proxy is not None
    scene.client.logoff()
    proxy.clear_log()
    upstream.clear_log()
    proc = scene.warmup("pure-a", "--python", "3.12", "--platform", LINUX, check_exit=2)
    lines = output_lines(proc)
    assert len(lines) == 1 and "devpi login" in lines[0], describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    # devpi-lockdown refused the first request (403 for devpi clients); nothing else was tried
    assert [(r.status, r.devpi_auth) for r in proxy.records()] == [(403, False)]
    assert upstream.paths() == []


def test_basic_auth_of_the_proxy_from_devpi_use_url(gated_devpi: LockedScene, tmp_path: Path) -> None:
    scene, proxy = gated_devpi, gated_devpi.proxy
    assert proxy is not None and proxy.basic_auth == GATE_AUTH
    user, password = GATE_AUTH
    assert requests.get(f"{proxy.url}/+api", timeout=30).status_code == 401  # the gate is closed
    assert requests.get(f"{proxy.url}/+api", auth=GATE_AUTH, timeout=30).status_code == 200

    client = DevpiClient(tmp_path / "fresh-client", scene.server)
    client.use(f"http://{user}:{password}@{proxy.url[len('http://') :]}/{scene.dev_index}")
    client.login(scene.user, scene.password)
    proxy.clear_log()
    proc = client.run("warmup", "pure-a", "--python", "3.12", "--platform", LINUX, check=False)
    assert proc.returncode == 0, describe(proc)
    assert f"3.12-{LINUX}: ok (2 files" in proc.stdout
    # basic auth for the gate and the devpi token for devpi-lockdown, on every request
    records = proxy.records()
    assert any("/+f/" in unquote(r.path) for r in records)
    assert all(r.authorization and r.devpi_auth and r.status == 200 for r in records), records
    assert "pure_b-1.0-py3-none-any.whl" in scene.links("pure-b")

    # the gate's password changes: the credentials are in the URL already, so say they were refused
    proxy.basic_auth = ("gate", "a-new-password")
    proc = client.run("warmup", "pure-a", "--python", "3.12", "--platform", LINUX, check=False)
    assert proc.returncode == 2, describe(proc)
    refused = f"{proxy.url}/ refused the HTTP basic auth user and password of the 'devpi use' URL"
    assert output_lines(proc) == [f"devpi warmup: {refused} (401 Unauthorized)"]


def test_without_the_basic_auth_devpi_use_fails_and_warmup_exits_2(
    gated_devpi: LockedScene, tmp_path: Path
) -> None:
    scene, proxy = gated_devpi, gated_devpi.proxy
    assert proxy is not None
    client = DevpiClient(tmp_path / "no-basic-auth", scene.server)
    used = client.run("use", scene.proxy_index_url, check=False)
    assert used.returncode != 0 and "401 Unauthorized" in used.stdout, describe(used)
    proc = client.run("warmup", "pure-a", "--python", "3.12", "--platform", LINUX, check=False)
    assert proc.returncode == 2, describe(proc)
    assert output_lines(proc) == ["not connected to an index, see 'devpi use'"]


def test_gate_added_after_devpi_use_is_named_as_the_cause(gated_devpi: LockedScene, tmp_path: Path) -> None:
    """State made before the proxy demanded basic auth: logged in, but without the gate's password."""
    scene, proxy = gated_devpi, gated_devpi.proxy
    assert proxy is not None
    client = DevpiClient(tmp_path / "before-the-gate", scene.server)
    proxy.basic_auth = None
    try:
        client.use(scene.proxy_index_url)
        client.login(scene.user, scene.password)
    finally:
        proxy.basic_auth = GATE_AUTH
    proxy.clear_log()
    proc = client.run("warmup", "pure-a", "--python", "3.12", "--platform", LINUX, check=False)
    assert proc.returncode == 2, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    assert [(r.status, r.authorization, r.devpi_auth) for r in proxy.records()] == [(401, False, True)]
    lines = output_lines(proc)
    assert len(lines) == 1, describe(proc)
    # alice is logged in: the fix is the proxy's credentials in the 'devpi use' URL, not 'devpi login'
    assert "401" in lines[0] and "basic auth" in lines[0].lower() and "devpi use" in lines[0], describe(proc)


class ArgvWatch(threading.Thread):
    """Samples ``/proc/*/cmdline`` of every process every 20 ms while running, and the
    environment of pip processes.

    A process whose argv holds a secret counts if it descends from this test process (the
    warmup, its pip processes and their build subprocesses), or if it vanished before its
    ancestry could be read; processes of other sessions on this machine do not count.
    """

    def __init__(self, secrets: set[str]) -> None:
        super().__init__(daemon=True)
        self.secrets = secrets
        self.hits: list[tuple[int, list[str], list[str]]] = []
        self.pip_argvs: list[list[str]] = []  # argv of pip processes of our tree, seen while sampling
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(0.02)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()

    def sample(self) -> None:
        self.samples += 1
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                argv = Path(entry.path, "cmdline").read_bytes().decode(errors="replace").split("\0")
            except OSError:
                continue
            text = "\0".join(argv)
            found = [s for s in self.secrets if s in text]
            if found and _descends_from(int(entry.name), os.getpid()) is not False:
                self.hits.append((int(entry.name), argv, found))
            if "pip" in text and _descends_from(int(entry.name), os.getpid()):
                self.pip_argvs.append(argv)
                try:
                    environ = Path(entry.path, "environ").read_bytes().decode(errors="replace")
                except OSError:
                    continue
                found = [s for s in self.secrets if s in environ]
                if found:
                    self.hits.append((int(entry.name), ["(environment of)", *argv], found))


def _descends_from(pid: int, ancestor: int) -> bool | None:
    """Is ``pid`` (a descendant of) ``ancestor``? None if a process vanished on the way."""
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after "(comm)" and the state
    return False


def test_no_credential_ever_leaks(gated_devpi: LockedScene, tmp_path: Path) -> None:
    scene, proxy = gated_devpi, gated_devpi.proxy
    assert proxy is not None
    token = scene.login_token()  # what 'devpi login' stored; the warmup sends it as X-Devpi-Auth
    gate_user, gate_password = GATE_AUTH
    assert scene.auth_json()["basic_auth"] == {f"{proxy.url}/": [gate_user, gate_password]}
    plain = {scene.password, token, gate_password}
    secrets = {form for s in plain for form in (s, quote(s, safe=""), quote(s), quote_plus(s))}
    secrets |= {
        base64.b64encode(pair.encode()).decode()
        for pair in (
            f"{scene.user}:{token}",
            f"{gate_user}:{gate_password}",
            f"{scene.user}:{scene.password}",
        )
    }
    report, dest = tmp_path / "report.json", tmp_path / "wh"

    watch = ArgvWatch(secrets)
    watch.start()
    try:
        proc = scene.client.run(
            "--debug", "warmup", "natpkg", "pure-a", "sdist-only", "--python", "3.12",
            "--platform", LINUX, "--platform", INTEL_MAC, "--report", str(report), "--dest", str(dest),
            check=False,
        )  # fmt: skip
    finally:
        watch.stop()

    # the run did the work: one target warmed, the other failed with pip's error shown
    assert proc.returncode == 1, describe(proc)
    assert f"3.12-{LINUX}: ok" in proc.stdout
    failed = proc.stdout.split(f"3.12-{INTEL_MAC}: FAILED", 1)
    assert len(failed) == 2 and "natpkg" in failed[1].splitlines()[0], describe(proc)
    assert {p.name for p in dest.iterdir()} >= {
        "natpkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "pure_a-2.0-py3-none-any.whl",
        "sdist_only-1.0.tar.gz",
        "warmup_backend-1.0-py3-none-any.whl",
    }
    data = json.loads(report.read_text())
    assert data["index"] == scene.proxy_simple_url
    assert {t["status"] for t in data["targets"]} == {"ok", "failed"}

    # ... and no secret, in any form, in its output or report
    for name, text in (("stdout", proc.stdout), ("stderr", proc.stderr), ("report", report.read_text())):
        leaked = sorted(s for s in secrets if s in text)
        assert not leaked, f"{name} contains {leaked}\n{describe(proc)}"
    assert "@" not in json.dumps([f["url"] for t in data["targets"] for f in t["files"]])

    # ... nor in the argv of any process, sampled while pip and pip's build subprocesses ran
    assert not watch.hits, watch.hits
    assert watch.samples > 10
    assert any("devpi_client_warmup.resolve._pip" in argv for argv in watch.pip_argvs)
    # pip's build subprocesses: the build environment's install, the PEP 517 hooks
    builds = [argv for argv in watch.pip_argvs if "--prefix" in argv or any("_in_process" in a for a in argv)]
    assert builds, sorted({" ".join(argv)[:200] for argv in watch.pip_argvs})


def test_auth_proxy_forwards_every_method_and_guards_like_nginx(locked_devpi: LockedScene) -> None:
    """The proxy the other tests rely on: bodies and methods reach devpi, refusals do not."""
    scene, proxy = locked_devpi, locked_devpi.proxy
    assert proxy is not None
    token = base64.b64encode(f"{scene.user}:{scene.login_token()}".encode()).decode()
    auth = {"X-Devpi-Auth": token, "Accept": "application/json"}
    index = f"{proxy.url}/{scene.user}/tmp"

    assert (
        requests.put(index, json={"type": "stage", "bases": []}, headers=auth, timeout=30).status_code == 200
    )
    assert (
        requests.patch(index, json=["title=through the proxy"], headers=auth, timeout=30).status_code == 200
    )
    assert requests.get(index, headers=auth, timeout=30).json()["result"]["title"] == "through the proxy"
    head = requests.head(f"{scene.proxy_simple_url}pure-a/", headers=auth, timeout=30)
    assert head.status_code == 200 and head.content == b"" and "X-Devpi-Server-Version" in head.headers
    # refused: without credentials (devpi-lockdown), and devpi never saw the request
    assert requests.delete(index, timeout=30).status_code == 401
    assert requests.delete(index, headers={"User-Agent": "devpi-client/7"}, timeout=30).status_code == 403
    assert requests.get(f"{scene.server.url}/{scene.user}/tmp", timeout=30).status_code == 200
    assert requests.get(f"{proxy.url}/+authcheck", headers=auth, timeout=30).status_code == 404  # internal
    assert requests.delete(index, headers=auth, timeout=30).status_code in (200, 201)
    assert requests.get(f"{scene.server.url}/{scene.user}/tmp", timeout=30).status_code == 404

    methods = [(r.method, r.status, r.devpi_auth) for r in proxy.records(f"/{scene.user}/tmp")]
    assert methods == [
        ("PUT", 200, True), ("PATCH", 200, True), ("GET", 200, True),
        ("DELETE", 401, False), ("DELETE", 403, False), ("DELETE", methods[-1][1], True),
    ]  # fmt: skip


def test_pip_gets_an_allow_listed_environment_and_never_a_proxy(devpi: DevpiScene) -> None:
    """DEVPI_INDEX may hold a password and any variable may hold a secret: pip and its build
    subprocesses get an allow-listed environment. A proxy that NO_PROXY does not exempt the
    tool's local gateway (127.0.0.1) from must not see pip's requests: here devpi is used as
    ``localhost``, which NO_PROXY exempts, as companies set it."""
    port = urlsplit(devpi.server.url).port
    devpi.client.use(f"http://localhost:{port}/alice/dev")
    canary = f"canary-{secrets.token_hex(8)}"
    dead_proxy = "http://127.0.0.1:9"  # nothing listens: a request sent there fails
    env = clean_env(
        HTTP_PROXY=dead_proxy, HTTPS_PROXY=dead_proxy, http_proxy=dead_proxy, https_proxy=dead_proxy,
        NO_PROXY="localhost", no_proxy="localhost", WARMUP_TEST_CANARY=canary,
    )  # fmt: skip
    watch = ArgvWatch({canary})
    watch.start()
    try:
        proc = devpi.warmup("pure-a", "sdist-only", "--python", "3.12", "--platform", LINUX, env=env)
    finally:
        watch.stop()
    assert proc.returncode == 0, describe(proc)
    assert any("devpi_client_warmup.resolve._pip" in argv for argv in watch.pip_argvs)
    # the canary never reached pip or a build subprocess (the devpi command itself has it, of course)
    children = [hit for hit in watch.hits if not any(arg.endswith("/devpi") for arg in hit[1])]
    assert not children, children


def test_a_mirror_that_redirects_to_its_upstream_gets_no_credential_sent_there(
    devpi: DevpiScene, upstream: Upstream
) -> None:
    """A devpi mirror with ``mirror_use_external_urls`` answers file requests with a redirect to
    its upstream: the tool does not follow it (devpi would store nothing), says why, and no
    credential of the logged-in user reaches the upstream host."""
    token = json.loads(devpi.client.run("getjson", "+api").stdout)  # logged in: the client has a token
    assert token["result"]["authstatus"][0] == "ok", token
    devpi.client.create_index(
        "external",
        "type=mirror",
        f"mirror_url={upstream.url}",
        "mirror_use_external_urls=True",
        "mirror_cache_expiry=0",
    )
    devpi.client.create_index("external-dev", f"bases={devpi.user}/external")
    devpi.client.use(f"{devpi.server.url}/{devpi.user}/external-dev")
    upstream.clear_log()
    proc = devpi.warmup("pure-a", "--python", "3.12", "--platform", "win_amd64")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "devpi redirects" in output and "to another host" in output, output
    assert "mirror_use_external_urls" in output, output
    assert "Traceback" not in output
    assert upstream.headers, "devpi never asked its upstream"
    for headers in upstream.headers:
        names = {name.lower() for name in headers}
        assert not names & {"x-devpi-auth", "authorization", "cookie"}, headers
    assert not [path for path in upstream.paths() if path.startswith("/files/")], upstream.paths()


def test_devpi_is_reached_through_the_users_proxy_and_the_local_gateway_never(devpi: DevpiScene) -> None:
    """With a proxy in the environment that nothing exempts devpi from, every request to devpi
    goes through it, as devpi-client's own would; pip's requests to the tool's local gateway
    (also on 127.0.0.1) never do."""
    devpi_port = urlsplit(devpi.server.url).port
    with forward_proxy() as proxy:
        env = clean_env(HTTP_PROXY=proxy.url, http_proxy=proxy.url, NO_PROXY="", no_proxy="")
        proc = devpi.warmup("pure-a", "--python", "3.12", "--platform", LINUX, env=env)
    assert proc.returncode == 0, describe(proc)
    assert f"3.12-{LINUX}: ok (" in proc.stdout
    paths = [urlsplit(url) for _, url in proxy.requests]
    assert any(p.path.startswith(f"/{devpi.user}/dev/+simple/") for p in paths), proxy.requests
    assert any("/+f/" in p.path for p in paths), proxy.requests  # the files too
    assert {p.port for p in paths} == {devpi_port}, proxy.requests  # nothing for the gateway
