"""A local HTTP front of the devpi index that every pip process of a run talks to.

pip never sees devpi's credentials: it authenticates to the gateway with a random per-run
password (handed over in a private netrc file) and the gateway adds devpi's credentials.
The gateway also

* fetches each index page once per run and shares it between all targets;
* advertises PEP 658 core metadata for every file and serves it from a content-addressed
  cache, else from devpi's own PEP 658 metadata where devpi offers it (``--enable-core-metadata``
  and, for mirrors, ``mirror_provides_core_metadata``), else read from the file: pip resolves
  without downloading wheels, and a re-run transfers no file bodies;
* probes devpi's cache state of each file *before* anything transfers it, so ``--check``
  and the report's "cached before" are exact;
* streams the files pip does download (sdists, wheels without cached metadata) through devpi,
  verifying sha256, which makes devpi store them: those are not fetched again.
"""

from __future__ import annotations

import base64
import email.parser
import functools
import hashlib
import heapq
import html
import posixpath
import re
import secrets
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import zipfile
from array import array
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import requests
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.tags import Tag, parse_tag
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from .errors import BuildFailed, FetchError
from .index import sdist
from .index.access import TIMEOUT, IndexAccess
from .index.cache import Kind
from .index.downloads import CHUNK, Downloads
from .index.files import Files, FileState
from .index.listing import Listed, release_of
from .matrix import Target

_LINK_RE = re.compile(r"(<a\s[^>]*>)([^<]*</a>)?", re.IGNORECASE)  # a link's opening tag, its text and end
_HREF_RE = re.compile(r"""href=(["'])(.*?)\1""", re.IGNORECASE)
_METADATA_ATTR_RE = re.compile(
    r"""(data-(?:core|dist-info)-metadata)\s*=\s*(?:(["'])[^"']*\2|[^\s>]+)""", re.IGNORECASE
)
_REQUIRES_PYTHON_RE = re.compile(r"""data-requires-python\s*=\s*(["'])(.*?)\1""", re.IGNORECASE)
_TAG = "~"  # /~TAG/... : the pip run a page request comes from
_BUILD = "build-"  # the tag of the pip run that builds an sdist's metadata here
# devpi's files are under USER/INDEX/+f/, which pip quotes (%2B) and then keeps a second,
# unquoted copy of each link's path (4 of its 116 MB for a "large" target): the gateway's pages
# say ~f (devpi allows neither "+" nor "~" in user and index names)
_DEVPI_FILES, _FILES = "+f", "~f"
_PREFETCH = 8  # index pages read ahead at once (waiting on devpi, not on the CPU)


@dataclass(frozen=True)
class _Page:
    status: int
    content_type: str
    path: Path | None
    digest: str  # of what devpi answered (before rewriting): tells an unchanged page
    # the wheel links by the wheels' tags, and the sdist links: (start, end, release) triples of
    # the link's byte span in the page and the release it offers (see _release)
    wheels: dict[frozenset[Tag], array[int]] = field(default_factory=dict)
    sdists: array[int] = field(default_factory=lambda: array("i"))
    requires_python: tuple[str, ...] = ()  # each release's, as the page says it ("": none)

    def body_for(self, sees: Sees | None, *, keep_shadowed_sdists: bool = False) -> bytes | bytearray:
        """The page for a target's pip run (``sees``; None: as it is): without the links it would
        not take. On big pages most links are those, which pip would parse and keep in memory.
        Left out are the wheels it cannot install, the releases whose Requires-Python its
        Python does not meet and, unless ``keep_shadowed_sdists``, the sdists of the releases
        that offer it a wheel: pip takes one file per release, and a wheel it can install ranks
        above its release's sdist (unless pip chooses by ``--hash`` or may not use wheels)."""
        assert self.path is not None
        body = self.path.read_bytes()
        if sees is None:
            return body
        unmet = frozenset(r for r, spec in enumerate(self.requires_python) if not _allows(spec, sees.python))
        dropped: list[Iterable[tuple[int, int]]] = []  # spans in page order, per kind of link
        offered: set[int] = set()  # releases with a wheel for the target
        for tags, found in self.wheels.items():
            if tags.isdisjoint(sees.tags):
                dropped.append(zip(found[0::3], found[1::3]))
            else:
                dropped.append(_spans(found, unmet))
                offered.update(found[2::3])
        dropped.append(_spans(self.sdists, unmet if keep_shadowed_sdists else unmet | offered))
        view, kept, at = memoryview(body), bytearray(), 0
        for start, end in heapq.merge(*dropped):
            kept += view[at:start]
            at = end
        kept += view[at:]
        return kept


def _spans(links: array[int], releases: frozenset[int] | set[int]) -> list[tuple[int, int]]:
    """The spans of the ``links`` (see ``_Page``) that offer one of ``releases``."""
    return [(s, e) for s, e, r in zip(links[0::3], links[1::3], links[2::3]) if r in releases]


@dataclass(frozen=True)
class Sees:
    """What the pip run for a target takes from a page: wheels with its tags, files whose
    Requires-Python its Python (``python_full_version``, as pip is told it) meets."""

    tags: frozenset[Tag]
    python: str


@functools.lru_cache(maxsize=4096)
def _allows(requires_python: str, python: str) -> bool:
    """Does ``python`` meet a link's Requires-Python (its attribute's text)? As pip reads it:
    an empty or unreadable one is met."""
    try:
        return not requires_python or SpecifierSet(html.unescape(requires_python)).contains(python)
    except InvalidSpecifier:
        return True


class Gateway:
    """Serve the devpi index to local pip processes (see module docstring)."""

    def __init__(
        self,
        access: IndexAccess,
        files: Files,
        downloads: Downloads,
        sdists: sdist.SdistFacts,
        workdir: Path,
        *,
        check: bool,
        refuse_builds: bool = False,
        pip_checks_hashes: bool = False,
        pip_may_refuse_wheels: bool = False,
        reachable: frozenset[Tag] | None = None,
        watch: Callable[[str, str], None] | None = None,
    ) -> None:
        self.access = access
        self.files, self.downloads, self.sdists = files, downloads, sdists
        self.check = check
        # pip needs the links' hashes only to choose among pinned ones (--hash): else they are
        # left out: pip keeps them per link, 38 of its 191 MB for a 300-requirement target (the
        # gateway checks every file it serves against the index's sha256)
        self._link_hashes = pip_checks_hashes
        # then pip may take the sdist of a release that has a wheel for the target (see _Page)
        self.keep_shadowed_sdists = pip_checks_hashes or pip_may_refuse_wheels
        # the wheel tags some pip run of this run may accept (every target's, and this machine's
        # for a metadata build here; None: any): a wheel with none of them is on no page (see
        # _rewrite)
        self._reachable = reachable
        self.refuse_builds = refuse_builds
        self.refused: dict[str, str] = {}  # sdist URL -> why pip may not build it here
        self.errors: list[str] = []  # HTTP failures from devpi worth telling the user
        self.failures: dict[str, str] = {}  # file URL -> why the gateway could not serve it
        self._unknown_by: dict[str, set[str]] = {}  # tag of a pip run -> projects devpi has not
        self.external: set[str] = set()  # file URLs outside devpi (mirror_use_external_urls)
        self._workdir = workdir
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(access.root_url))
        self._root_path = urlsplit(access.root_url).path.rstrip("/") + "/"  # devpi's, under origin
        self._simple_path = access.simple_url[len(self.origin) :]  # /USER/INDEX/+simple/
        self._password = secrets.token_urlsafe(24)
        self._pages: dict[str, _Page] = {}
        self._prefetcher = ThreadPoolExecutor(_PREFETCH, thread_name_prefix="prefetch")
        self._prefetched: set[str] = set()
        self._read_by: dict[str, set[str]] = {}  # tag of a pip run -> the pages it read
        self._target_of: dict[str, Target] = {}  # tag of a pip run -> the target it resolves
        self._sees: dict[str, Sees] = {}  # tag of a pip run -> what it takes from a page
        self._shared: dict[str, set[str]] = {}  # tag of a metadata build -> see _read_around
        self._watch = watch  # told (target, what its pip asks for now) on every request
        self._built: set[str] = set()  # sdists whose metadata is built here
        self._upstream_unreachable = False  # devpi's upstream cannot be read from this machine
        self.builder: Callable[[str, str, str], bytes] | None = None  # see _build
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        # a short poll: shutting down waits for the next one
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Gateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop serving. After a run, first wait for what is still at work (a page read ahead):
        it writes into the run's folder, which is removed next. After an interrupt, wait for
        nothing: what is still at work finds that folder gone."""
        finished = exc[0] is None
        self._server.close(wait=finished)
        self._prefetcher.shutdown(wait=finished, cancel_futures=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def simple_url(self) -> str:
        return self.access.simple_url

    def index_url_for(self, tag: str, target: Target) -> str:
        """The index's simple URL for one pip run for ``target``; ``tag`` tells its requests apart."""
        with self._lock:
            self._target_of[tag] = target
            self._sees[tag] = Sees(frozenset(target.tags), target.python.full_version)
        return f"{self.url}/{_TAG}{tag}{self._simple_path}"

    def pages_read_by(self, tag: str) -> set[str]:
        with self._lock:
            return set(self._read_by.get(tag, ()))

    def page_digest(self, path: str) -> str:
        return self.page(path).digest

    def announced_sha256(self, url: str) -> str | None:
        """The sha256 the index page announces for the file at ``url`` (pip may not know it)."""
        listed = self.files.listing.lookup(url)
        return listed.sha256 if listed else None

    def netrc(self) -> str:
        """netrc text that lets pip (and pip's build subprocesses) authenticate to the gateway."""
        return f"machine 127.0.0.1 login warmup password {self._password}\n"

    def devpi_url(self, url: str) -> str:
        """Map a gateway URL (as pip reports it) back to the devpi URL."""
        return (
            self.origin + self.request(unquote(url[len(self.url) :]))[1] if url.startswith(self.url) else url
        )

    def request(self, path: str) -> tuple[str, str]:
        """The tag of the pip run that asks for ``path`` (unquoted), and the path on devpi."""
        tag, path = _split_tag(path)
        parts = self._index_file(path, _FILES)
        if parts:
            path = self._root_path + "/".join([*parts[:2], _DEVPI_FILES, parts[3]])
        return tag, path

    def _index_file(self, path: str, files: str) -> list[str] | None:
        """USER, INDEX, ``files``, the rest: of a ``path`` ROOT/USER/INDEX/``files``/..."""
        if not path.startswith(self._root_path):
            return None
        parts = path[len(self._root_path) :].split("/", 3)
        return parts if len(parts) == 4 and parts[2] == files else None

    # -- request handling --------------------------------------------------------------------

    def asked(self, tag: str, path: str) -> None:
        """Tell the watcher what the pip run ``tag`` asks for now (in words)."""
        with self._lock:
            target = self._target_of.get(tag)
        if target is None or self._watch is None:
            return
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if "/+f/" not in path:
            what = f"page of {name}"
        elif path.endswith(".metadata"):
            what = f"metadata of {name.removesuffix('.metadata')}"
        elif self.origin + path in self._built:
            what = f"building the metadata of {name}"
        else:
            what = f"reading {name}"
        self._watch(target.name, what)

    def unknown_for(self, tag: str) -> list[str]:
        """Projects the index answered 404 for when the pip run ``tag`` asked (sorted)."""
        with self._lock:
            return sorted(self._unknown_by.get(tag, ()))

    def explain(self, pip_output: str, error: str) -> str:
        """A failed pip run's ``error``, replaced by the reason when the gateway knows it better."""
        with self._lock:
            failures = dict(self.failures)
        for url, reason in failures.items():
            if url.rsplit("/", 1)[-1] in pip_output:
                return reason
        return error

    def failed_files(self, pip_error: str) -> list[str]:
        """Filenames of files the gateway could not serve that pip's error names."""
        with self._lock:
            names = [url.rsplit("/", 1)[-1] for url in self.failures]
        return [name for name in names if name in pip_error]

    def authorized(self, header: str | None) -> bool:
        expected = base64.b64encode(f"warmup:{self._password}".encode()).decode()
        return secrets.compare_digest(header or "", f"Basic {expected}")

    def _lock_for(self, key: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def prefetch(self, projects: Iterable[str]) -> None:
        """Read these projects' index pages in the background: pip asks for them soon (a
        requirement, or a dependency in metadata it was just served), and devpi may take seconds
        per page (refreshing it from its upstream), which pip would otherwise wait for in turn."""
        for project in projects:
            path = f"{self._simple_path}{canonicalize_name(project)}/"
            with self._lock:
                if path in self._pages or path in self._prefetched:
                    continue
                self._prefetched.add(path)
            self._prefetcher.submit(self._quietly, path)

    def _quietly(self, path: str) -> None:
        try:
            self.page(path)
        except (requests.RequestException, OSError, ValueError):
            pass  # pip asks again and then hears of it

    def page(self, path: str, read_by: str = "") -> _Page:
        """An index page, fetched from devpi once per run, rewritten for pip."""
        if read_by:
            with self._lock:
                self._read_by.setdefault(read_by, set()).add(path)
        with self._lock_for(path):
            if path not in self._pages:
                self._pages[path] = self._fetch_page(path)
            page = self._pages[path]
        if read_by and page.status == 404 and path.startswith(self._simple_path):
            with self._lock:
                self._unknown_by.setdefault(read_by, set()).add(path[len(self._simple_path) :].strip("/"))
        return page

    def _fetch_page(self, path: str) -> _Page:
        url = self.origin + path
        response = self.access.http().get(url, headers={"Accept": "text/html"}, timeout=TIMEOUT)
        if response.status_code != 200:
            if response.status_code in (401, 403) or response.status_code >= 500:
                with self._lock:
                    self.errors.append(f"devpi answered {response.status_code} {response.reason} for {url}")
            return _Page(response.status_code, "text/plain", None, f"status {response.status_code}")
        digest = hashlib.sha256(response.content).hexdigest()
        text = response.text
        del response  # its bytes (a page can take megabytes)
        handle, name = tempfile.mkstemp(dir=self._workdir, suffix=".html")
        with open(handle, "wb") as stream:
            wheels, sdists, requires_python = self._rewrite(url, text, stream)
        return _Page(200, "text/html; charset=utf-8", Path(name), digest, wheels, sdists, requires_python)

    def sees(self, tag: str) -> Sees | None:
        """What the pip run ``tag`` takes from a page (None: a run for this machine: all)."""
        with self._lock:
            return self._sees.get(tag)

    def _rewrite(
        self, page_url: str, text: str, out: IO[bytes]
    ) -> tuple[dict[frozenset[Tag], array[int]], array[int], tuple[str, ...]]:
        """Write the page to ``out`` with its links pointing at the gateway (relative links),
        advertising metadata for every file (noting the files devpi itself offers PEP 658
        metadata for), and without the wheels no pip run of this run can take (on big pages most
        links; of those, a pure and a compiled one per release stay listed); learn each file's
        sha256. Returns the wheel and sdist links and the releases' Requires-Python (see
        ``_Page``)."""
        page_dir = urlsplit(page_url).path.rsplit("/", 1)[0] or "/"
        project = canonicalize_name(page_dir.rsplit("/", 1)[-1])
        releases: dict[tuple[str, str], int] = {}
        listed: list[Listed] = []
        unreachable: set[tuple[str, bool]] = set()  # (name-version, pure) of such wheels listed
        wheels: dict[frozenset[Tag], array[int]] = {}
        sdists = array("i")
        at = length = 0
        for link in _LINK_RE.finditer(text):
            length += out.write(text[at : link.start()].encode())
            opening, file = self._rewrite_anchor(page_url, page_dir, link.group(1))
            element = (opening + (link.group(2) or "")).encode()
            if file and link.group(2):  # a whole link to a file: it can be left out
                filename = file.filename  # as pip reads it from the URL
                tags = _wheel_tags(filename)
                if tags and self._reachable is not None and tags.isdisjoint(self._reachable):
                    # on no page; listed once per release, a pure and a compiled one: an sdist's
                    # metadata may be read from it (pure first), and tell a compiled project
                    key = (filename.rsplit("-", 3)[0], all(t.platform == "any" for t in tags))
                    if key not in unreachable:
                        unreachable.add(key)
                        listed.append(file)
                    at = link.end()
                    continue
                offers = _release(link.group(1), filename, project)
                release = -1 if offers is None else releases.setdefault(offers, len(releases))
                if tags:
                    wheels.setdefault(tags, array("i")).extend((length, length + len(element), release))
                elif release >= 0 and not filename.endswith(".whl"):
                    sdists.extend((length, length + len(element), release))
            if file:
                listed.append(file)
            length += out.write(element)
            at = link.end()
        out.write(text[at:].encode())
        self.files.learn_page(page_dir.rsplit("/", 1)[-1], listed)
        return wheels, sdists, tuple(requires_python for _, requires_python in releases)

    def _rewrite_anchor(self, page_url: str, page_dir: str, tag: str) -> tuple[str, Listed | None]:
        """One link's opening tag rewritten, and its file on devpi as the link announces it
        (the tag as it is and no file for a link off devpi or without href)."""
        href = _HREF_RE.search(tag)
        if not href:
            return tag, None
        value = html.unescape(href.group(2)) if "&" in href.group(2) else href.group(2)
        path, _, fragment = value.partition("#")
        if _stays_below(page_dir, path):  # the gateway's page is devpi's one level down: kept
            file_url = self.origin + posixpath.normpath(posixpath.join(page_dir, path))
        else:
            file_url, fragment = urldefrag(urljoin(page_url, value))
            if not file_url.startswith(self.origin + "/"):
                self.external.add(file_url)
                return tag, None
            # relative: a file keeps the /~TAG/ of the pip run that read the page (pages are shared)
            path = posixpath.relpath(file_url[len(self.origin) :], page_dir)
        for_pip = f"{path}#{fragment}" if fragment and self._link_hashes else path
        if self._index_file(file_url[len(self.origin) :], _DEVPI_FILES):  # see request()
            for_pip = for_pip.replace(f"/{_DEVPI_FILES}/", f"/{_FILES}/", 1)
        tag = tag[: href.start(2)] + html.escape(for_pip) + tag[href.end(2) :]
        devpi_metadata = "data-core-metadata" in tag or "data-dist-info-metadata" in tag  # PEP 658
        sha256 = fragment[len("sha256=") :] if fragment.startswith("sha256=") else None
        return _announce_metadata(tag), Listed(file_url, sha256, devpi_metadata)

    def metadata(self, file_url: str, tag: str = "") -> bytes:
        """Core metadata for the pip run ``tag``: from the cache, else read from the file (see
        ``_sdist_metadata`` for sdists).

        Raises ``NoMetadata`` for an sdist whose metadata is not to be built here, or whose build failed.
        """
        data = self._metadata(file_url, tag)
        dependencies = _dependencies(data)
        with self._lock:
            shared = self._shared.get(tag)
            if shared is not None and _project(file_url) in shared:
                shared.update(canonicalize_name(name) for name in dependencies)
        self.prefetch(dependencies)
        return data

    def _metadata(self, file_url: str, tag: str) -> bytes:
        with self._lock_for(file_url):
            cached = self.files.fact(file_url, Kind.METADATA)
            if cached is not None:
                return cached
            if not file_url.endswith(".whl"):
                return self._sdist_metadata(file_url, tag)
            listed = self.files.listing.lookup(file_url)
            data = self._devpi_core_metadata(file_url) if listed and listed.core_metadata else None
            if data is None:
                state = self.files.state(file_url)
                if self._read_around(tag, state):
                    try:
                        upstream = self.downloads.upstream_metadata(state)  # unverifiable: used, never cached
                    except requests.RequestException:
                        if self.check:
                            raise
                        self._upstream_unreachable, upstream = True, None
                    if upstream is not None:
                        return upstream
                data = _wheel_metadata(self.spooled(file_url, tag))  # verified against the index's sha256
            self.files.remember(file_url, Kind.METADATA, data)
            return data

    def _read_around(self, tag: str, state: FileState) -> bool:
        """Is a file devpi does not store read from devpi's upstream instead, for the pip run
        ``tag``? For --check always. For a metadata build here, unless the target's own build of
        that sdist takes the same file (a pure wheel of its declared build requirements, markers
        evaluated for the target, or of what they require: fetched once, through devpi), and
        while this machine can reach devpi's upstream (else through devpi, and listed apart)."""
        if state.cached:
            return False
        if self.check:
            return True
        if not tag.startswith(_BUILD) or self._upstream_unreachable:
            return False
        with self._lock:
            shared = self._shared.get(tag, set())
        return not (_is_pure_wheel(state.filename) and _project(state.url) in shared)

    def _devpi_core_metadata(self, file_url: str) -> bytes | None:
        """A wheel's METADATA as devpi serves it (PEP 658): without the wheel's body, and without
        devpi storing the wheel (a mirror with ``mirror_provides_core_metadata`` streams it from
        its upstream). None if devpi does not answer with it."""
        response = self.access.http().get(file_url + ".metadata", timeout=TIMEOUT)
        return response.content if response.status_code == 200 and response.content else None

    def _sdist_metadata(self, file_url: str, tag: str) -> bytes:
        """An sdist's metadata without running its code: its PKG-INFO if static (PEP 643), else
        the METADATA of a wheel of the same release, else a legacy sdist's egg-info (best effort);
        else, unless builds are refused, built here once (see ``_build``)."""
        path = self.spooled(file_url, tag)
        data, source = sdist.static_metadata(path), sdist.MetadataSource.STATIC
        if data is None:
            data, source = self._sibling_wheel_metadata(file_url, tag), sdist.MetadataSource.WHEEL
        if data is None:
            data, source = sdist.legacy_metadata(path), sdist.MetadataSource.LEGACY
        if data is None:
            data, source = self._build(file_url, tag), sdist.MetadataSource.BUILT
        self.files.remember(file_url, Kind.METADATA, data)
        self.files.remember(file_url, Kind.METADATA_SOURCE, source.name.encode())
        return data

    def _build(self, file_url: str, tag: str) -> bytes:
        """The sdist's metadata from its build backend, run here by ``builder`` (a pip run of its
        own, once per run: the caller holds the file's lock). What that build installs for itself
        does not end up in devpi (see ``_read_around``). A refused or failed build raises
        ``NoMetadata``, and the sdist is refused with the cause."""
        filename = file_url.rsplit("/", 1)[-1]
        if self.refuse_builds or self.builder is None:
            self.refused[file_url] = (
                f"{filename}: its metadata can be learned only by running its build backend,"
                " and --refuse-builds forbids that"
            )
            raise NoMetadata(file_url)
        self._built.add(file_url)
        self.asked(tag, file_url[len(self.origin) :])
        build_tag = _BUILD + hashlib.sha256(file_url.encode()).hexdigest()[:12]
        with self._lock:
            target = self._target_of.get(tag)
        shared = self._build_requirements_for(file_url, target)
        with self._lock:
            self._shared[build_tag] = shared
        base = f"{self.url}/{_TAG}{build_tag}"
        try:
            return self.builder(filename, base + file_url[len(self.origin) :], base + self._simple_path)
        except BuildFailed as exc:
            self.refused[file_url] = f"{filename}: building its metadata on this machine failed: {exc}"
            raise NoMetadata(file_url) from None

    def _sibling_wheel_metadata(self, file_url: str, tag: str) -> bytes | None:
        """The METADATA of a wheel of the same release (pure wheels first), if the release has one."""
        release = parse_sdist_filename(file_url.rsplit("/", 1)[-1])
        wheels = [url for url in self.files.listing.release_files(*map(str, release)) if url.endswith(".whl")]
        for url in sorted(wheels, key=lambda url: not url.endswith("-none-any.whl")):
            try:
                return self.metadata(url, tag)
            except (requests.RequestException, FetchError, OSError, ValueError, zipfile.BadZipFile):
                continue
        return None

    def spooled(self, file_url: str, tag: str = "") -> Path:
        """A file fetched through devpi (which stores it), or, where ``_read_around`` says so,
        from devpi's upstream, leaving devpi as it is."""
        if file_url in self.refused:
            raise FetchError(self.refused[file_url])
        state = self.files.state(file_url)
        if self._read_around(tag, state):
            try:
                return self.downloads.spool(state, around_devpi=True)
            except (requests.RequestException, FetchError):
                if self.check:
                    raise
                self._upstream_unreachable = True
        return self.downloads.spool(state)

    def _build_requirements_for(self, file_url: str, target: Target | None) -> set[str]:
        """The projects of the sdist's declared build requirements whose markers hold for ``target``."""
        try:
            declared = self.sdists.build_info(file_url).build_requires
        except (OSError, ValueError, tarfile.TarError, zipfile.BadZipFile):
            return set()
        names: set[str] = set()
        for text in declared:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            marker = requirement.marker
            if (
                marker is None
                or target is None
                or marker.evaluate({**target.marker_environment, "extra": ""})
            ):
                names.add(canonicalize_name(requirement.name))
        return names


def _project(file_url: str) -> str:
    """The canonical project name of a wheel or sdist URL ("" if the name is not one)."""
    release = release_of(file_url.rsplit("/", 1)[-1])
    return release[0] if release else ""


def _stays_below(page_dir: str, path: str) -> bool:
    """Is ``path`` a plain relative path that, from ``page_dir``, climbs no higher than the root?
    Then it leads to the same file from the gateway's page, under the pip run's /~TAG/."""
    if not path or ":" in path or path.startswith("/") or "?" in path:
        return False
    return posixpath.normpath(posixpath.join("/~" + page_dir, path)).startswith("/~/")


def _release(opening: str, filename: str, project: str) -> tuple[str, str] | None:
    """The release a link to the wheel or sdist ``filename`` (unquoted, as pip reads it) of
    ``project`` offers, as pip tells releases apart for a target: its version and
    Requires-Python. None for a yanked file, another project's,
    a name pip would not read, or a Requires-Python this cannot read (such links are kept:
    pip decides)."""
    attributes = opening.lower()
    if "data-yanked" in attributes:
        return None
    if filename.endswith(".whl"):
        parts = filename[: -len(".whl")].split("-")
        tags_valid = len(parts) in (5, 6) and _tags("-".join(parts[-3:]))
        release = _wheel_release("-".join(parts[:-3])) if tags_valid else None
    else:
        release = release_of(filename)
    if release is None or release[0] != project:
        return None
    requires_python = _REQUIRES_PYTHON_RE.search(opening)
    if requires_python is None and "data-requires-python" in attributes:
        return None
    return release[1], requires_python.group(2) if requires_python else ""


def _announce_metadata(opening: str) -> str:
    """A link's opening tag announcing PEP 658 metadata without a hash: the gateway serves it
    for every file (see metadata(): sdists too), and shorter than devpi's (see _lean)."""
    found = opening.count("data-core-metadata") + opening.count("data-dist-info-metadata")
    if not found:
        return opening[:-1] + ' data-core-metadata="true">'
    if opening.count('-metadata="true"') == found:  # devpi-server 6 announces no hash
        return opening
    return _METADATA_ATTR_RE.sub(r'\1="true"', opening)


@functools.lru_cache(maxsize=4096)  # a release's wheels differ only in their tags
def _wheel_release(stem: str) -> tuple[str, str] | None:
    """(project, version) of the wheels ``{stem}-{tags}.whl``, as packaging reads them (pip
    skips a wheel whose name, version or build tag it cannot read)."""
    return release_of(f"{stem}-py3-none-any.whl")


def _wheel_tags(filename: str) -> frozenset[Tag]:
    """The tags of a wheel (from its filename, unquoted as pip reads it); empty for anything
    else or a malformed name."""
    if not filename.endswith(".whl"):
        return frozenset()
    return _tags("-".join(filename[: -len(".whl")].split("-")[-3:]))


@functools.lru_cache(maxsize=4096)  # a page lists many releases with the same few tags
def _tags(triple: str) -> frozenset[Tag]:
    try:
        return parse_tag(triple)
    except ValueError:
        return frozenset()  # kept for every target: pip decides


def _is_pure_wheel(filename: str) -> bool:
    try:
        return filename.endswith(".whl") and all(
            t.platform == "any" for t in parse_wheel_filename(filename)[3]
        )
    except InvalidWheelFilename:
        return False


def _dependencies(metadata: bytes) -> list[str]:
    """The projects a core metadata file requires, leaving out those only extras want."""
    message = email.parser.BytesParser().parsebytes(metadata, headersonly=True)
    names = []
    for value in message.get_all("Requires-Dist", []):
        try:
            requirement = Requirement(value)
        except InvalidRequirement:
            continue
        if requirement.marker is None or "extra" not in str(requirement.marker):
            names.append(requirement.name)
    return names


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an interrupted run waits for no handler (see close)

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(address, handler)
        self._open: set[socket.socket] = set()  # each connection a handler serves
        self._closed = threading.Condition()  # notified as a handler ends

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._closed:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._closed:
            self._open.discard(request)
            self._closed.notify_all()

    def close(self, wait: bool) -> None:
        """Accept no more connections; with ``wait``, end each handler's wait for a next
        request (a client may keep its connection open) and wait for the answers being given."""
        self.shutdown()
        if wait:
            with self._closed:
                for connection in self._open:
                    try:
                        connection.shutdown(socket.SHUT_RD)
                    except OSError:
                        pass  # closed already
                self._closed.wait_for(lambda: not self._open)
        self.server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A pip process that closes its connection between requests is no error; anything
        else is a bug of the gateway, which pip then reports as a failed request."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class NoMetadata(Exception):
    """An sdist's metadata is not to be built here, or its build failed: pip is answered 404."""


def _split_tag(path: str) -> tuple[str, str]:
    """``/~TAG/rest`` -> ``(TAG, /rest)``; an untagged path has the tag ``""``."""
    if path.startswith("/" + _TAG):
        tag, _, rest = path[len(_TAG) + 1 :].partition("/")
        return tag, "/" + rest
    return "", path


def _lean(metadata: bytes) -> bytes:
    """Core metadata as pip gets it: without the description (the body, or a Description
    field), which pip does not read but keeps for every candidate it looks at (a resolution
    of hundreds of projects: megabytes). Every other field stays as it is."""
    kept: list[bytes] = []
    dropping = False
    for line in metadata.splitlines(keepends=True):
        if line in (b"\n", b"\r\n"):  # the end of the fields (a line of blanks continues one)
            break
        if line[:1] not in (b" ", b"\t"):  # a field, not the continuation of one
            dropping = line[:12].lower() == b"description:"
        if not dropping:
            kept.append(line)
    return b"".join(kept)


def _wheel_metadata(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if re.match(r"^[^/]+\.dist-info/METADATA$", n)]
        if len(names) != 1:
            raise ValueError(f"{wheel.name}: no single .dist-info/METADATA")
        return archive.read(names[0])


def _handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else each answer waits ~40 ms for pip's delayed ACK

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: pip reports what matters."""

        def do_GET(self) -> None:
            if not gateway.authorized(self.headers.get("Authorization")):
                self._reply(401, b"authentication required", {"WWW-Authenticate": 'Basic realm="warmup"'})
                return
            tag, path = gateway.request(unquote(self.path))
            devpi_url = gateway.origin + path
            gateway.asked(tag, path)
            try:
                if "/+f/" in path and path.endswith(".metadata"):
                    self._reply(200, _lean(gateway.metadata(devpi_url[: -len(".metadata")], tag)))
                elif "/+f/" in path:
                    self._send_file(gateway.spooled(devpi_url, tag))
                else:
                    self._page(gateway.page(path, read_by=tag), gateway.sees(tag))
            except NoMetadata:
                self._reply(404, b"no core metadata without a build")
            except (BrokenPipeError, ConnectionResetError):
                pass  # pip went away (it retries on its own)
            except (requests.RequestException, FetchError, OSError, ValueError) as exc:
                message = gateway.access.redact(str(exc))
                if "/+f/" in path:
                    with gateway._lock:
                        gateway.failures[devpi_url.removesuffix(".metadata")] = message
                else:
                    with gateway._lock:
                        gateway.errors.append(message)
                # a status pip does not retry (502 it would, 5 times): devpi was retried already
                self._reply(504, b"devpi fetch failed")

        def _page(self, page: _Page, sees: Sees | None) -> None:
            if page.path is None:
                self._reply(page.status, b"")
                return
            body = page.body_for(sees, keep_shadowed_sdists=gateway.keep_shadowed_sdists)
            self._reply(200, body, {"Content-Type": page.content_type})

        def _send_file(self, path: Path) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(path.stat().st_size))
            self.end_headers()
            with path.open("rb") as stream:
                shutil.copyfileobj(stream, self.wfile, CHUNK)

        def _reply(self, status: int, body: bytes | bytearray, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
