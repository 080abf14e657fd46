"""The session that talks to devpi: credentials go to devpi's own origin only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devpi_client_warmup.errors import FetchError
from devpi_client_warmup.index.access import IndexAccess


@contextmanager
def server(redirect_to: str = "") -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An HTTP server on 127.0.0.1 recording each request's headers; it redirects every
    path except ``/here`` to ``redirect_to`` + path when that is given."""
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **dict(self.headers)})
            if redirect_to and self.path != "/here":
                location = "/here" if self.path == "/same-origin" else redirect_to + self.path
                self.send_response(302)
                self.send_header("Location", location)
            else:
                self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_redirect_off_devpi_is_refused_before_anything_is_sent_there() -> None:
    with server() as (elsewhere, elsewhere_seen), server(redirect_to=elsewhere) as (devpi, devpi_seen):
        access = IndexAccess(
            root_url=devpi + "/", index_url=devpi + "/alice/dev", simple_url=devpi + "/alice/dev/+simple/",
            headers={"X-Devpi-Auth": "dG9rZW4="}, basic_auth=("alice", "pw"), secrets=("dG9rZW4=", "pw"),
        )  # fmt: skip
        session = access.session()
        # a redirect within devpi is followed, with the credentials
        assert session.get(devpi + "/same-origin", timeout=10).status_code == 200
        assert [r["path"] for r in devpi_seen] == ["/same-origin", "/here"]
        assert all(r["X-Devpi-Auth"] == "dG9rZW4=" and r["Authorization"] for r in devpi_seen)
        # a redirect to another host (another port is another origin) is not followed at all
        with pytest.raises(FetchError, match="devpi redirects .* to another host") as raised:
            session.get(devpi + "/root/pypi/+f/abc/pkg-1.0.tar.gz", timeout=10)
        assert elsewhere_seen == []
        assert "dG9rZW4=" not in str(raised.value)
