"""File bodies through devpi: streamed sha256-checked downloads, store confirmation, --dest.

Every file is fetched at most once per run: a download made while resolving (see the gateway)
is spooled and reused for ``--dest``; a file devpi already stores is only probed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from pathlib import Path

import requests

from ..errors import FetchError
from .access import TIMEOUT, IndexAccess
from .cache import Kind, write_atomically
from .files import Files, FileState, probe

CHUNK = 1 << 20  # bytes read or written at a time
_ATTEMPTS = 3
_STORE_WAIT = 30  # seconds devpi may take to commit a file it has served


class Downloads:
    """The bodies of the index's files, spooled under ``spool`` for the run."""

    def __init__(self, access: IndexAccess, files: Files, spool: Path) -> None:
        self._access = access
        self._files = files
        self._spool = spool
        self._spool.mkdir(parents=True, exist_ok=True)

    def spool(self, state: FileState, *, around_devpi: bool = False, stored: bool = False) -> Path:
        """The file, verified, fetched at most once per run: through devpi (so devpi stores it).

        ``around_devpi`` reads it from devpi's upstream instead, leaving devpi untouched (--check,
        a metadata build here); ``stored`` fetches a copy read so again, through devpi.
        """
        with state.lock:
            attempt = 1
            while state.spooled is None or (stored and state.spooled_around):
                try:
                    state.spooled = self._download(state, around_devpi)
                except requests.RequestException:  # a dropped connection: retry with backoff
                    if attempt == _ATTEMPTS:
                        raise
                    time.sleep(0.5 * 2**attempt)
                    attempt += 1
            return state.spooled

    def upstream_metadata(self, state: FileState) -> bytes | None:
        """A wheel's PEP 658 metadata from devpi's upstream, if it serves one (--check, around devpi)."""
        if not state.upstream_url:
            return None
        with requests.Session() as upstream:  # devpi's credentials never go to its upstream
            response = upstream.get(state.upstream_url + ".metadata", timeout=TIMEOUT)
        return response.content if response.status_code == 200 else None

    def _download(self, state: FileState, around_devpi: bool) -> Path:
        if around_devpi:
            if not state.upstream_url:
                raise FetchError(
                    f"{state.filename}: devpi does not store it and names no upstream to read it from"
                )
            with requests.Session() as upstream:  # devpi's credentials never go to its upstream
                path = self._receive(
                    state, upstream.get(state.upstream_url, stream=True, timeout=TIMEOUT), "upstream"
                )
            state.spooled_around = True
            return path
        path = self._receive(state, self._access.http().get(state.url, stream=True, timeout=TIMEOUT), "devpi")
        state.fetched, state.spooled_around = True, False
        return path

    def _receive(self, state: FileState, response: requests.Response, source: str) -> Path:
        """Stream a response into the spool, checking the sha256 the index announced."""
        if response.status_code != 200:
            raise FetchError(f"{state.filename}: {source} answered {response.status_code} {response.reason}")
        digest, size = hashlib.sha256(), 0
        handle, name = tempfile.mkstemp(dir=self._spool, prefix=".part-")
        try:
            with open(handle, "wb") as out:
                for chunk in response.iter_content(CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            if state.sha256 and digest.hexdigest() != state.sha256:
                raise FetchError(
                    f"{state.filename}: sha256 mismatch: the index says {state.sha256}, the bytes are {digest.hexdigest()}"
                )
            spooled = self._spool / f"{digest.hexdigest()}-{state.filename}"
            os.replace(name, spooled)
        finally:
            Path(name).unlink(missing_ok=True)
        state.size = size
        self._files.remember(state.url, Kind.SIZE, str(size).encode())
        return spooled

    def ensure(self, state: FileState, dest: Path | None) -> None:
        """Make devpi store the file and, with ``dest``, keep a verified copy there."""
        kept = dest / state.filename if dest else None
        if kept is not None and state.sha256 and kept.is_file() and _sha256(kept) == state.sha256:
            state.size = kept.stat().st_size
            kept = None  # already in the wheelhouse
        try:
            if not state.cached or kept is not None:
                spooled = self.spool(state, stored=True)
                if kept is not None:
                    with spooled.open("rb") as stream:
                        write_atomically(kept, iter(lambda: stream.read(CHUNK), b""))
            if state.fetched and not state.cached_before:
                self._confirm_stored(state)
            if state.size is None:
                state.size = self.size(state)
        except (requests.RequestException, FetchError) as exc:
            state.error = self._access.redact(str(exc))
        except OSError as exc:
            state.error = f"{state.filename}: cannot write to {dest}: {exc.strerror or exc}"

    def size(self, state: FileState) -> int | None:
        """The size of a file devpi stores, without transferring it (HEAD only on stored files)."""
        cached = self._files.fact(state.url, Kind.SIZE)
        if cached is not None and cached.isdigit():  # anything else is a damaged entry: a miss
            return int(cached)
        if not state.cached:
            return None
        response = self._access.http().head(state.url, timeout=TIMEOUT)
        length = response.headers.get("Content-Length", "")
        if response.status_code != 200 or not length.isdigit():
            return None
        self._files.remember(state.url, Kind.SIZE, length.encode())
        return int(length)

    def _confirm_stored(self, state: FileState) -> None:
        """devpi commits a file just after sending its last byte: wait until its probe says stored."""
        deadline, delay = time.monotonic() + _STORE_WAIT, 0.01
        while not probe(self._access.http(), state.url)[0]:
            if time.monotonic() > deadline:
                raise FetchError(
                    f"{state.filename}: devpi served the file but did not store it"
                    " (is the mirror set to mirror_use_external_urls?)"
                )
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
