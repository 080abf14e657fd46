"""A PEP 503 / PEP 691 "simple" index served from a directory, with fault injection."""

from __future__ import annotations

import email.message
import email.parser
import hashlib
import html
import json
import shutil
import tarfile
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote

from ._distwriter import normalize

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"


@dataclass(frozen=True)
class DistFile:
    """One file of the index with the metadata the simple API needs."""

    path: Path
    project: str
    sha256: str
    requires_python: str | None

    @property
    def filename(self) -> str:
        return self.path.name


def read_metadata(path: Path) -> email.message.Message:
    """Core metadata (METADATA or PKG-INFO) read from a wheel or an sdist."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
            raw = zf.read(name)
    elif path.name.endswith(".tar.gz"):
        with tarfile.open(path) as tf:
            member = next(
                m for m in tf.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO")
            )
            fileobj = tf.extractfile(member)
            assert fileobj is not None
            raw = fileobj.read()
    else:
        raise ValueError(f"unsupported distribution file: {path.name}")
    return email.parser.BytesParser().parsebytes(raw)


def dist_file(path: Path) -> DistFile:
    meta = read_metadata(path)
    return DistFile(
        path=path,
        project=normalize(meta["Name"]),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        requires_python=meta.get("Requires-Python"),
    )


def prefers_json(accept: str) -> bool:
    """Content negotiation between PEP 691 JSON and HTML by q-value."""
    json_q = html_q = 0.0
    for item in accept.split(","):
        mime, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if mime == JSON_TYPE:
            json_q = max(json_q, q)
        elif mime in (HTML_TYPE, "text/html", "*/*"):
            html_q = max(html_q, q)
    return json_q > 0 and json_q >= html_q


class Upstream:
    """A simple index on 127.0.0.1 serving every dist file in ``root``.

    Pages are generated per request, so files added with :meth:`add` show up
    immediately.  Every request is logged in :attr:`requests`.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.requests: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []  # every request's headers, in order
        self._completed: Counter[str] = Counter()
        self._faults: dict[str, tuple[str, int]] = {}
        self.file_delay = 0.0  # seconds every file body waits before it is sent (a slow link)
        self.slow_files: dict[str, float] = {}  # filename -> its own delay (a large file on a slow link)
        self.core_metadata = False  # serve FILE.whl.metadata (PEP 658) for every wheel
        self.active = self.max_active = 0  # file bodies being sent now, and the most at once
        self._meta_cache: dict[tuple[str, float, int], DistFile] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "upstream not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The simple index URL, ``http://127.0.0.1:PORT/simple/``."""
        return f"{self.base_url}/simple/"

    def file_url(self, filename: str) -> str:
        return f"{self.base_url}/files/{filename}"

    def start(self) -> Upstream:
        upstream = self

        class Handler(_Handler):
            pass

        Handler.upstream = upstream
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="upstream-index",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Upstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- content -------------------------------------------------------------

    def add(self, path: Path) -> Path:
        """Copy a dist file into the index (visible on the next request)."""
        target = self.root / path.name
        shutil.copyfile(path, target)
        return target

    def files(self) -> list[DistFile]:
        result = []
        for path in sorted(self.root.iterdir()):
            if not path.is_file():
                continue
            stat = path.stat()
            key = (path.name, stat.st_mtime, stat.st_size)
            with self._lock:
                cached = self._meta_cache.get(key)
            if cached is None:
                cached = dist_file(path)
                with self._lock:
                    self._meta_cache[key] = cached
            result.append(cached)
        return result

    def projects(self) -> dict[str, list[DistFile]]:
        result: dict[str, list[DistFile]] = {}
        for dist in self.files():
            result.setdefault(dist.project, []).append(dist)
        return result

    # -- observation ---------------------------------------------------------

    def file_gets(self, filename: str) -> int:
        """Number of GETs of ``/files/<filename>`` that sent a whole body.

        Corrupted responses count; truncated and failed ones do not.
        """
        with self._lock:
            return self._completed[filename]

    def paths(self, method: str = "GET") -> list[str]:
        with self._lock:
            return [p for m, p in self.requests if m == method]

    def clear_log(self) -> None:
        with self._lock:
            self.requests.clear()
            self.headers.clear()
            self._completed.clear()

    # -- fault injection -----------------------------------------------------

    def corrupt(self, filename: str) -> None:
        """Serve different bytes of the same length for ``filename``."""
        self._set_fault(filename, "corrupt")

    def truncate(self, filename: str) -> None:
        """Send the full Content-Length but close after half the body."""
        self._set_fault(filename, "truncate")

    def fail(self, filename: str, status: int = 500) -> None:
        """Answer requests for ``filename`` with an error ``status``."""
        self._set_fault(filename, "fail", status)

    def stall_project(self, name: str, seconds: float) -> None:
        """Hold every answer for project ``name``'s page for ``seconds`` (a slow upstream)."""
        self._set_fault(f"project:{normalize(name)}", "stall", int(seconds))

    def heal(self, filename: str) -> None:
        """Undo any fault injected for ``filename``."""
        with self._lock:
            self._faults.pop(filename, None)

    def _set_fault(self, filename: str, kind: str, status: int = 0) -> None:
        with self._lock:
            self._faults[filename] = (kind, status)

    def _fault(self, filename: str) -> tuple[str, int] | None:
        with self._lock:
            return self._faults.get(filename)

    def _log(self, method: str, path: str, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests.append((method, path))
            self.headers.append(headers)

    def _count_get(self, filename: str, delta: int) -> None:
        with self._lock:
            self._completed[filename] += delta


class _Handler(BaseHTTPRequestHandler):
    upstream: Upstream
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._dispatch(head=True)

    def do_GET(self) -> None:
        self._dispatch(head=False)

    def _dispatch(self, head: bool) -> None:
        path = unquote(self.path.split("?", 1)[0].split("#", 1)[0])
        self.upstream._log(self.command, path, dict(self.headers))
        parts = [p for p in path.split("/") if p]
        if parts == ["simple"]:
            self._index(head)
        elif len(parts) == 2 and parts[0] == "simple":
            self._project(parts[1], head)
        elif len(parts) == 2 and parts[0] == "files":
            self._file(parts[1], head)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", head)

    def _send_slowly(self, filename: str, data: bytes) -> None:
        """Send ``data`` over the file's delay, a part each second (a client's read timeout
        sees bytes arriving), counting the bodies on their way."""
        upstream = self.upstream
        delay = upstream.slow_files.get(filename, upstream.file_delay)
        with upstream._lock:
            upstream.active += 1
            upstream.max_active = max(upstream.max_active, upstream.active)
        try:
            steps = max(1, round(delay))
            size = -(-len(data) // steps)
            for step in range(steps):
                time.sleep(delay / steps)
                self.wfile.write(data[step * size : (step + 1) * size])
                self.wfile.flush()
        finally:
            with upstream._lock:
                upstream.active -= 1

    def _core_metadata(self, wheel: str, head: bool) -> None:
        """PEP 658: a wheel's METADATA, when the upstream serves core metadata at all."""
        path = self.upstream.root / wheel
        if not self.upstream.core_metadata or "/" in wheel or not path.is_file():
            self._send(HTTPStatus.NOT_FOUND, b"no such file\n", "text/plain", head)
            return
        self.upstream._log("METADATA", wheel, dict(self.headers))
        with zipfile.ZipFile(path) as archive:
            (member,) = [
                n for n in archive.namelist() if n.endswith(".dist-info/METADATA") and n.count("/") == 1
            ]
            self._send(200, archive.read(member), "application/octet-stream", head)

    def _send(self, status: int, body: bytes, ctype: str, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # devpi went away: a test stopped it

    def _wants_json(self) -> bool:
        return prefers_json(self.headers.get("Accept", ""))

    def _index(self, head: bool) -> None:
        names = sorted(self.upstream.projects())
        if self._wants_json():
            data = {"meta": {"api-version": "1.0"}, "projects": [{"name": n} for n in names]}
            self._send(200, json.dumps(data).encode(), JSON_TYPE, head)
            return
        links = "".join(f'<a href="{n}/">{n}</a>\n' for n in names)
        page = f"<!DOCTYPE html>\n<html><body>\n{links}</body></html>\n"
        self._send(200, page.encode(), "text/html; charset=utf-8", head)

    def _project(self, name: str, head: bool) -> None:
        stall = self.upstream._fault(f"project:{normalize(name)}")
        if stall:
            time.sleep(stall[1])
        if name != normalize(name) or not self.path.endswith("/"):
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", f"/simple/{normalize(name)}/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        dists = self.upstream.projects().get(name)
        if not dists:
            self._send(HTTPStatus.NOT_FOUND, b"no such project\n", "text/plain", head)
            return
        if self._wants_json():
            files = []
            for d in dists:
                entry: dict[str, Any] = {
                    "filename": d.filename,
                    "url": f"../../files/{d.filename}",
                    "hashes": {"sha256": d.sha256},
                }
                if d.requires_python:
                    entry["requires-python"] = d.requires_python
                files.append(entry)
            data = {"meta": {"api-version": "1.0"}, "name": name, "files": files}
            self._send(200, json.dumps(data).encode(), JSON_TYPE, head)
            return
        links = []
        for d in dists:
            rp = ""
            if d.requires_python:
                rp = f' data-requires-python="{html.escape(d.requires_python, quote=True)}"'
            links.append(
                f'<a href="../../files/{quote(d.filename)}#sha256={d.sha256}"{rp}>{d.filename}</a><br/>\n'
            )
        page = (
            f"<!DOCTYPE html>\n<html><head><title>Links for {name}</title></head>"
            f"<body><h1>Links for {name}</h1>\n{''.join(links)}</body></html>\n"
        )
        self._send(200, page.encode(), "text/html; charset=utf-8", head)

    def _file(self, filename: str, head: bool) -> None:
        if filename.endswith(".whl.metadata"):
            self._core_metadata(filename.removesuffix(".metadata"), head)
            return
        path = self.upstream.root / filename
        if "/" in filename or not path.is_file():
            self._send(HTTPStatus.NOT_FOUND, b"no such file\n", "text/plain", head)
            return
        fault = self.upstream._fault(filename)
        kind = fault[0] if fault else None
        if fault and kind == "fail":
            self._send(fault[1], b"injected failure\n", "text/plain", head)
            return
        body = path.read_bytes()
        if kind == "corrupt":
            body = bytes(b ^ 0xFF for b in body)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return
        if kind == "truncate":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        # Count the GET before its last byte goes out: a client holding the
        # whole body always sees it counted.  Undo if that byte is not sent.
        self._send_slowly(filename, body[:-1])
        self.upstream._count_get(filename, 1)
        try:
            self.wfile.write(body[-1:])
            self.wfile.flush()
        except OSError:
            self.upstream._count_get(filename, -1)
            raise
