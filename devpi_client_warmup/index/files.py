"""Files through devpi: cache probes, streamed sha256-checked downloads, the --dest wheelhouse.

Every file is fetched at most once per run: a download made while resolving (see the gateway)
is spooled and reused for ``--dest``; a file devpi already stores is only probed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from ..errors import FetchError
from . import sdist
from .access import TIMEOUT, IndexAccess
from .cache import Cache, Kind, write_atomically
from .listing import Listed, Listing
from .pages import ProjectPages

_CHUNK = 1 << 20
_ATTEMPTS = 3
_STORE_WAIT = 30  # seconds devpi may take to commit a file it has served


@dataclass
class FileState:
    """What is known about one file of the index during a run."""

    url: str  # devpi URL, without credentials
    sha256: str | None = None
    cached_before: bool | None = None  # did devpi store it before this run touched it?
    upstream_url: str | None = field(default=None, repr=False)  # where devpi fetches it from
    size: int | None = None
    fetched: bool = False  # fully downloaded through devpi (so devpi stores it) by this run
    error: str | None = None
    spooled: Path | None = field(default=None, repr=False)
    spooled_around: bool = False  # the spooled copy came from devpi's upstream (devpi has none)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def cached(self) -> bool:
        return bool(self.cached_before or self.fetched)


def probe(session: requests.Session, url: str) -> tuple[bool, str | None]:
    """Does devpi store ``url``, and where does devpi get it from? (JSON GET: nothing is fetched.)"""
    response = session.get(url, headers={"Accept": "application/json"}, timeout=TIMEOUT)
    if response.status_code != 200:
        return False, None
    try:
        info = response.json()
    except ValueError:
        return False, None
    info = info.get("result", info) if isinstance(info, dict) else {}
    upstream = info.get("url") if isinstance(info.get("url"), str) else None
    return "last_modified" in info, upstream


class Store:
    """The run's view of devpi's files, shared by the gateway and the fetch step."""

    def __init__(self, access: IndexAccess, workdir: Path, cache: Cache) -> None:
        self.access = access
        self._spool = workdir / "spool"
        self._spool.mkdir(parents=True, exist_ok=True)
        self.cache = cache
        self._states: dict[str, FileState] = {}
        self.listing = Listing()
        self._lock = threading.Lock()
        self._local = threading.local()
        self.pages = ProjectPages(access.simple_url, self.http, self.learn_page)

    def http(self) -> requests.Session:
        """This thread's session to devpi."""
        if not hasattr(self._local, "session"):
            self._local.session = self.access.session()
        session: requests.Session = self._local.session
        return session

    def _entry(self, url: str) -> FileState:
        with self._lock:
            state = self._states.get(url)
            if state is None:
                listed = self.listing.lookup(url)
                state = self._states[url] = FileState(url, listed.sha256 if listed else None)
            return state

    def learn_page(self, project: str, files: list[Listed]) -> None:
        """Record the files a project page lists (see ``Listing``)."""
        self.listing.learn(project, files)
        with self._lock:
            for file in files:
                if file.sha256 and file.url in self._states:
                    self._states[file.url].sha256 = file.sha256

    def state(self, url: str) -> FileState:
        """The file's state, probing devpi the first time it is asked for."""
        state = self._entry(url)
        with state.lock:
            if state.cached_before is None:
                state.cached_before, state.upstream_url = probe(self.http(), url)
        return state

    def filenames(self, project: str, version: str) -> list[str]:
        """Files of a release as the index pages seen so far list them."""
        return [url.rsplit("/", 1)[-1] for url in self.listing.release_files(project, version)]

    def versions(self, project: str) -> list[str]:
        """Versions of a project's files as the index pages seen so far list them."""
        return self.listing.versions(project)

    def fetched_files(self) -> list[FileState]:
        """Every file this run fetched through devpi (so devpi stores it now), by URL."""
        with self._lock:
            return sorted((state for state in self._states.values() if state.fetched), key=lambda f: f.url)

    def cached(self, url: str, kind: Kind) -> bytes | None:
        """A fact about a file kept across runs, keyed by its sha256 (so by its content)."""
        sha256 = self._entry(url).sha256
        return self.cache.get(kind, sha256) if sha256 else None

    def knows(self, url: str, kind: Kind) -> bool:
        return self.cached(url, kind) is not None

    def remember(self, url: str, kind: Kind, data: bytes) -> None:
        sha256 = self._entry(url).sha256
        if sha256:
            self.cache.put(kind, sha256, data)

    def recall(self, kind: Kind, key: str) -> bytes | None:
        """What a previous run kept under ``key`` (see ``keep``)."""
        return self.cache.get(kind, key)

    def keep(self, kind: Kind, key: str, data: bytes) -> None:
        self.cache.put(kind, key, data)

    def sdist_info(self, url: str) -> sdist.Sdist:
        """What the sdist at ``url`` needs to build (read once, then from the cache)."""
        cached = self.cached(url, Kind.SDIST_BUILD)
        if cached is not None:
            try:
                return sdist.Sdist.from_json(cached)
            except (ValueError, KeyError, TypeError):
                pass  # a damaged entry is a miss
        info = sdist.inspect(self.spool(self.state(url)))
        self.remember(url, Kind.SDIST_BUILD, info.to_json())
        return info

    def metadata_source(self, url: str) -> sdist.MetadataSource | None:
        """Where the dependencies of the sdist at ``url`` came from, when resolution read them."""
        kept = self.cached(url, Kind.METADATA_SOURCE)
        return sdist.MetadataSource.__members__.get(kept.decode("ascii", "replace")) if kept else None

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
        path = self._receive(state, self.http().get(state.url, stream=True, timeout=TIMEOUT), "devpi")
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
                for chunk in response.iter_content(_CHUNK):
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
        self.remember(state.url, Kind.SIZE, str(size).encode())
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
                        write_atomically(kept, iter(lambda: stream.read(_CHUNK), b""))
            if state.fetched and not state.cached_before:
                self._confirm_stored(state)
            if state.size is None:
                state.size = self.size(state)
        except (requests.RequestException, FetchError) as exc:
            state.error = self.access.redact(str(exc))
        except OSError as exc:
            state.error = f"{state.filename}: cannot write to {dest}: {exc.strerror or exc}"

    def size(self, state: FileState) -> int | None:
        """The size of a file devpi stores, without transferring it (HEAD only on stored files)."""
        cached = self.cached(state.url, Kind.SIZE)
        if cached is not None and cached.isdigit():  # anything else is a damaged entry: a miss
            return int(cached)
        if not state.cached:
            return None
        response = self.http().head(state.url, timeout=TIMEOUT)
        length = response.headers.get("Content-Length", "")
        if response.status_code != 200 or not length.isdigit():
            return None
        self.remember(state.url, Kind.SIZE, length.encode())
        return int(length)

    def _confirm_stored(self, state: FileState) -> None:
        """devpi commits a file just after sending its last byte: wait until its probe says stored."""
        deadline, delay = time.monotonic() + _STORE_WAIT, 0.01
        while not probe(self.http(), state.url)[0]:
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
        for chunk in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()
