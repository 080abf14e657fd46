"""The run's registry of the index's files: what each page lists, what devpi stores (probed
once per file), and facts kept across runs about a file's content."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from .access import TIMEOUT
from .cache import Cache, Kind
from .listing import Listed, Listing


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


class Files:
    """Every file of the index this run has seen, shared by the gateway and the fetch step."""

    def __init__(self, http: Callable[[], requests.Session], cache: Cache) -> None:
        self._http = http
        self._cache = cache
        self._states: dict[str, FileState] = {}
        self.listing = Listing()
        self._lock = threading.Lock()

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
                state.cached_before, state.upstream_url = probe(self._http(), url)
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

    def fact(self, url: str, kind: Kind) -> bytes | None:
        """A fact about a file kept across runs, keyed by its sha256 (so by its content)."""
        sha256 = self._entry(url).sha256
        return self._cache.get(kind, sha256) if sha256 else None

    def knows(self, url: str, kind: Kind) -> bool:
        return self.fact(url, kind) is not None

    def remember(self, url: str, kind: Kind, data: bytes) -> None:
        sha256 = self._entry(url).sha256
        if sha256:
            self._cache.put(kind, sha256, data)
