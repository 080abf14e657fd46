"""What the index's project pages list: each file's URL, the sha256 the page announces, and
whether devpi offers the file's core metadata (PEP 658).

A run over hundreds of projects reads pages that list hundreds of thousands of files, of which
its targets ask about a few thousand. So a page's files are kept as one string of URLs and one
bytes of digests rather than as objects per file, and a project's releases are parsed from the
filenames only when first asked for.
"""

from __future__ import annotations

import itertools
import os
import threading
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

_DIGEST = 32  # bytes of a sha256
_NONE = bytes(_DIGEST)  # no sha256 announced


@dataclass(frozen=True)
class Listed:
    """A file as a project page lists it."""

    url: str
    sha256: str | None = None
    core_metadata: bool = False  # devpi serves its core metadata (PEP 658)

    @property
    def filename(self) -> str:
        return unquote(self.url.rsplit("/", 1)[-1])


@dataclass
class _Files:
    """One project's listed files, by position."""

    prefix: str  # common to all their URLs
    tails: str  # "\n" before each URL's rest and at the end
    digests: bytearray  # the sha256s, _DIGEST bytes each (_NONE: none announced)
    metadata: bytearray  # 1 where devpi offers the file's core metadata
    odd: dict[int, str] = field(default_factory=dict)  # an announced sha256 that is not one
    releases: dict[str, array[int]] | None = None  # version -> positions, parsed when asked

    def urls(self, positions: Iterable[int]) -> list[str]:
        tails = self.tails.split("\n")[1:-1]
        return [self.prefix + tails[at] for at in positions]

    def find(self, url: str) -> int | None:
        if not url.startswith(self.prefix) or "\n" in url:
            return None
        found = self.tails.find(f"\n{url[len(self.prefix) :]}\n")
        return None if found < 0 else self.tails.count("\n", 0, found)


class Listing:
    """The files every index page read so far lists (thread-safe)."""

    def __init__(self) -> None:
        self._projects: dict[str, _Files] = {}
        self._lock = threading.Lock()

    def learn(self, project: str, files: Iterable[Listed]) -> None:
        """Record the files a project page lists; a file listed before takes what this page
        announces. A URL with a line break is left out (it could not be looked up)."""
        name = canonicalize_name(project)
        with self._lock:
            known = self._projects.get(name) or _Files("", "\n", bytearray(), bytearray())
            urls = known.urls(range(len(known.metadata)))
            position = {url: at for at, url in enumerate(urls)}
            listed = len(urls)
            for f in files:
                if "\n" in f.url:
                    continue
                at = position.get(f.url)
                if at is None:
                    at = position[f.url] = len(urls)
                    urls.append(f.url)
                    known.digests += _NONE
                    known.metadata.append(False)
                if f.sha256:
                    known.digests[at * _DIGEST : (at + 1) * _DIGEST] = _digest(f.sha256) or _NONE
                    known.odd.pop(at, None)
                    if not _digest(f.sha256):
                        known.odd[at] = f.sha256
                known.metadata[at] |= f.core_metadata
            if len(urls) == listed:  # no new file: updated in place, its releases still hold
                return
            prefix = os.path.commonprefix(urls)
            tails = "".join([*(f"\n{url[len(prefix) :]}" for url in urls), "\n"])  # one copy
            self._projects[name] = _Files(prefix, tails, known.digests, known.metadata, known.odd)

    def lookup(self, url: str) -> Listed | None:
        """What the pages say of the file at ``url``; None if no page read so far lists it."""
        with self._lock:
            release = release_of(url.rsplit("/", 1)[-1])
            likely = self._projects.get(release[0]) if release else None
            # its own project's page first, then any other (a file can be listed elsewhere)
            for files in itertools.chain([likely] if likely else [], self._projects.values()):
                at = files.find(url)
                if at is not None:
                    return _listed(files, url, at)
        return None

    def versions(self, project: str) -> list[str]:
        """The versions of a project's files, as the pages read so far list them."""
        with self._lock:
            return list(self._releases(canonicalize_name(project)))

    def release_files(self, project: str, version: str) -> list[str]:
        """URLs of a release's files, as the pages read so far list them."""
        name = canonicalize_name(project)
        with self._lock:
            positions = self._releases(name).get(version)
            return self._projects[name].urls(positions) if positions else []

    def _releases(self, name: str) -> dict[str, array[int]]:
        files = self._projects.get(name)
        if files is None:
            return {}
        if files.releases is None:
            files.releases = {}
            for at, url in enumerate(files.urls(range(len(files.metadata)))):
                release = release_of(url.rsplit("/", 1)[-1])
                if release and release[0] == name:
                    files.releases.setdefault(release[1], array("l")).append(at)
        return files.releases


def _listed(files: _Files, url: str, at: int) -> Listed:
    digest = bytes(files.digests[at * _DIGEST : (at + 1) * _DIGEST])
    sha256 = files.odd.get(at) or (digest.hex() if digest != _NONE else None)
    return Listed(url, sha256, bool(files.metadata[at]))


def _digest(sha256: str | None) -> bytes | None:
    try:
        digest = bytes.fromhex(sha256 or "")
    except ValueError:
        return None
    return digest if len(digest) == _DIGEST else None


def release_of(filename: str) -> tuple[str, str] | None:
    """(canonical project name, version) of a wheel or sdist filename."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return name, str(version)
