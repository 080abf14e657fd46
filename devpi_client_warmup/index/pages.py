"""The index's PEP 691 (JSON) project pages, from which a lock's files are chosen."""

from __future__ import annotations

import threading
from collections.abc import Callable
from urllib.parse import urljoin

import requests

from ..errors import FetchError
from .access import TIMEOUT
from .listing import Listed

_JSON_PAGE = "application/vnd.pypi.simple.v1+json"


class ProjectPages:
    """Each project's page, read once per run; what it lists is handed to ``learn``."""

    def __init__(
        self,
        simple_url: str,
        http: Callable[[], requests.Session],
        learn: Callable[[str, list[Listed]], None],
    ) -> None:
        self._simple_url = simple_url
        self._http = http
        self._learn = learn
        self._pages: dict[str, list[Listed] | None] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def project_files(self, project: str) -> list[Listed] | None:
        """A project's files on the index; None if the index has no such project."""
        with self._lock:
            lock = self._locks.setdefault(project, threading.Lock())
        with lock:
            if project not in self._pages:
                self._pages[project] = self._read(project)
            return self._pages[project]

    def _read(self, project: str) -> list[Listed] | None:
        page_url = f"{self._simple_url}{project}/"
        response = self._http().get(page_url, headers={"Accept": _JSON_PAGE}, timeout=TIMEOUT)
        if response.status_code == 404:
            return None
        if response.status_code != 200 or not response.headers.get("Content-Type", "").startswith(_JSON_PAGE):
            raise FetchError(
                f"{page_url}: devpi answered {response.status_code} {response.reason} (no PEP 691 page)"
            )
        files = [
            Listed(urljoin(page_url, entry["url"]).split("#", 1)[0], entry.get("hashes", {}).get("sha256"))
            for entry in response.json()["files"]
        ]
        self._learn(project, files)
        return files
