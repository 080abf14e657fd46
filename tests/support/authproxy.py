"""A reverse proxy in front of devpi-server that locks down reads, as nginx does in production.

devpi-server alone serves every index to anyone. Deployments that protect reads put nginx in
front of it with

* ``auth_basic`` (optional): HTTP Basic credentials of the proxy itself, which is what
  ``devpi use https://user:pass@host/...`` is for;
* ``auth_request /+authcheck`` with the ``devpi-lockdown`` plugin: for every request nginx
  first asks devpi-server's ``/+authcheck`` (an internal location) whether the request's
  credentials are good, passing all of the client's headers, no body, and the request URI in
  ``X-Original-URI``. 2xx: the request goes through; 401/403: the client gets that status.
  devpi-lockdown lets ``/+api``, ``/+login``, ``/+logout`` and static files through; it
  answers 403 instead of 401 to clients whose User-Agent contains ``devpi-client``.

``AuthProxy`` does the same in a few lines (see ``nginx-devpi-lockdown.conf`` from
``devpi-gen-config``): like ``proxy_pass``, it sends ``Host`` of the backend and tells devpi the
outside URL in ``X-outside-url``, so the URLs devpi generates point at the proxy.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import shutil
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import requests

from .devpi import DEFAULT_EMAIL, DevpiClient, DevpiScene, SharedAccount, create_indexes, rest, rest_login

# headers that belong to one connection (RFC 9110 7.6.1), never forwarded
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade", "host",
}  # fmt: skip
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ProxyRecord:
    """One request the proxy answered; which credentials came with it, never their values."""

    method: str
    path: str
    status: int
    authorization: bool  # an Authorization header was sent (HTTP Basic)
    devpi_auth: bool  # an X-Devpi-Auth header was sent (the devpi login token)
    accept: str = ""  # the Accept header (a JSON probe of a file vs. its bytes)


class AuthProxy:
    """``AuthProxy(devpi_url, lockdown=True, basic_auth=("gate", "pw"))`` on 127.0.0.1, a free port."""

    def __init__(
        self, backend_url: str, *, lockdown: bool = True, basic_auth: tuple[str, str] | None = None
    ) -> None:
        backend = urlsplit(backend_url)
        assert backend.scheme == "http" and backend.hostname, backend_url
        self.backend = (backend.hostname, backend.port or 80)
        self.backend_netloc = backend.netloc
        self.lockdown = lockdown
        self.basic_auth = basic_auth
        self.log: list[ProxyRecord] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def url_with_auth(self, path: str = "") -> str:
        """``url`` + ``path`` with the basic-auth credentials in it (for ``devpi use``)."""
        assert self.basic_auth is not None
        user, password = self.basic_auth
        return f"http://{user}:{password}@{self.url[len('http://') :]}{path}"

    def start(self) -> AuthProxy:
        assert self._thread is None, "proxy already running"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> AuthProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def records(self, path_contains: str = "") -> list[ProxyRecord]:
        with self._lock:
            return [record for record in self.log if path_contains in record.path]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # -- what nginx decides before proxy_pass ------------------------------------------------

    def basic_auth_ok(self, header: str | None) -> bool:
        if self.basic_auth is None:
            return True
        expected = base64.b64encode(":".join(self.basic_auth).encode()).decode()
        return secrets.compare_digest(header or "", f"Basic {expected}")

    def backend_request(
        self, method: str, path: str, headers: dict[str, str], body: Iterable[bytes] | None = None
    ) -> http.client.HTTPResponse:
        connection = http.client.HTTPConnection(*self.backend, timeout=300)
        connection.request(method, path, body=body, headers=headers)
        return connection.getresponse()  # closing the response closes the connection

    def _record(self, record: ProxyRecord) -> None:
        with self._lock:
            self.log.append(record)


def _handler(proxy: AuthProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: requests are recorded in ``proxy.log``."""

        def do_GET(self) -> None:
            self._proxy()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def send_response(self, code: int, message: str | None = None) -> None:
            """Record the request when its answer starts: before the client can have read it."""
            proxy._record(
                ProxyRecord(
                    method=self.command,
                    path=self.path,
                    status=code,
                    authorization="Authorization" in self.headers,
                    devpi_auth="X-Devpi-Auth" in self.headers,
                    accept=self.headers.get("Accept", ""),
                )
            )
            super().send_response(code, message)

        def _proxy(self) -> None:
            """nginx: ``auth_basic``, then ``auth_request /+authcheck``, then ``proxy_pass``."""
            headers = self._forward_headers()
            refusal = self._refusal(headers)
            if refusal is not None:
                self._reply(*refusal)
                return
            body = None
            if self.headers.get("Content-Length") is not None:
                headers["Content-Length"] = self.headers["Content-Length"]
                body = self._body(int(headers["Content-Length"]))
            try:
                response = proxy.backend_request(self.command, self.path, headers, body)
            except OSError:
                self._reply(502)  # devpi-server is not running
                return
            try:
                self._relay(response)
            finally:
                response.close()

        def _refusal(self, headers: dict[str, str]) -> tuple[int, dict[str, str]] | None:
            """Status and headers to refuse the request with, or None to let it through."""
            if "chunked" in self.headers.get("Transfer-Encoding", ""):
                return 411, {}  # no client of these tests sends chunked bodies
            if not proxy.basic_auth_ok(self.headers.get("Authorization")):
                return 401, {"WWW-Authenticate": 'Basic realm="devpi"'}
            if self.path.split("?", 1)[0] == "/+authcheck":
                return 404, {}  # nginx: "location = /+authcheck { internal; ... }"
            if not proxy.lockdown:
                return None
            try:  # the client's headers, no body, and the request URI
                check = proxy.backend_request("GET", "/+authcheck", {**headers, "X-Original-URI": self.path})
                check.read()
                check.close()
            except OSError:
                return 502, {}
            if 200 <= check.status < 300:
                return None
            if check.status in (401, 403):
                challenge = check.getheader("WWW-Authenticate")
                return check.status, {"WWW-Authenticate": challenge} if challenge else {}
            return 500, {}  # what nginx does with any other answer

        def _body(self, length: int) -> Iterator[bytes]:
            """The request body, streamed to devpi-server as it arrives."""
            while length > 0:
                chunk = self.rfile.read(min(_CHUNK, length))
                if not chunk:
                    break
                length -= len(chunk)
                yield chunk

        def _forward_headers(self) -> dict[str, str]:
            """The client's headers as ``proxy_pass`` sends them to devpi-server."""
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers.pop("Content-Length", None)
            headers["Host"] = proxy.backend_netloc
            headers["X-outside-url"] = f"http://{self.headers.get('Host') or proxy.url[len('http://') :]}"
            headers["X-Real-IP"] = self.client_address[0]
            return headers

        def _relay(self, response: http.client.HTTPResponse) -> None:
            """devpi's answer, streamed; without a Content-Length the connection ends the body."""
            self.send_response(response.status, response.reason)
            for key, value in response.getheaders():
                if key.lower() not in HOP_BY_HOP:
                    self.send_header(key, value)
            length = response.getheader("Content-Length")
            if length is None and self.command != "HEAD":
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                shutil.copyfileobj(response, self.wfile, _CHUNK)

        def _reply(self, status: int, headers: dict[str, str] | None = None) -> None:
            """An answer of the proxy itself; it closes the connection (a request body may be unread)."""
            body = f"{status} {http.client.responses.get(status, '')}\n".encode()
            self.close_connection = True
            self.send_response(status)
            self.send_header("Connection", "close")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

    return Handler


@dataclass
class LockedScene(DevpiScene):
    """A ``DevpiScene`` whose devpi-server runs devpi-lockdown and whose client reaches it only
    through ``proxy``. ``server.url``, ``links`` and ``file_meta`` still talk to devpi-server
    directly (it does not protect reads itself), to check what it stores."""

    proxy: AuthProxy | None = None

    @property
    def proxy_index_url(self) -> str:
        assert self.proxy is not None
        return f"{self.proxy.url}/{self.dev_index}"

    @property
    def proxy_simple_url(self) -> str:
        return f"{self.proxy_index_url}/+simple/"

    def auth_json(self) -> dict[str, Any]:
        """devpi-client's credential store: ``{"auth": {root_url: [[user, token], ...]},
        "basic_auth": {root_url: [user, password]}}``."""
        path = self.clientdir / "auth.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def login_token(self) -> str:
        """The devpi login token of ``user`` that ``devpi login`` stored for the proxy."""
        assert self.proxy is not None
        users = dict(self.auth_json()["auth"][f"{self.proxy.url}/"])
        return str(users[self.user])


def assert_lockdown_active(server_url: str) -> None:
    """devpi-lockdown's ``/+authcheck`` refuses an anonymous read and lets ``/+api`` through."""
    anonymous = requests.get(f"{server_url}/+authcheck", headers={"X-Original-URI": "/root/"}, timeout=30)
    api = requests.get(f"{server_url}/+authcheck", headers={"X-Original-URI": "/+api"}, timeout=30)
    assert (anonymous.status_code, api.status_code) == (401, 200), (
        "devpi-lockdown is not active in devpi-server (pip install devpi-lockdown):"
        f" /+authcheck answered {anonymous.status_code} for /root/ and {api.status_code} for /+api"
    )


def setup_locked_scene(
    account: SharedAccount, clientdir: Path, mirror_url: str, proxy: AuthProxy
) -> LockedScene:
    """On the shared server, through ``proxy``: a user of its own (with a password unique to
    the run, with characters that URL-quoting changes, in no other process's argv), her mirror
    of ``mirror_url`` and USER/dev over the REST API; the client runs ``devpi use`` with
    the proxy (its basic auth in the URL if it has one) and ends logged in, USER/dev in use."""
    server = account.server
    assert_lockdown_active(server.url)
    user, password = f"user-{secrets.token_hex(4)}", f"Al1ce pw/{secrets.token_hex(4)}@%"
    scene = LockedScene(server, DevpiClient(clientdir, server), mirror_url, user, password, proxy=proxy)
    rest(server, "PUT", f"/{user}", {"password": password, "email": DEFAULT_EMAIL}, account.root)
    create_indexes(scene, rest_login(server, user, password))
    scene.client.use(proxy.url_with_auth("/") if proxy.basic_auth else proxy.url)
    scene.client.login(user, password)
    scene.client.use(scene.proxy_index_url)
    return scene
