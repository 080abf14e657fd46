"""The one on-disk cache: facts kept across runs, in typed namespaces, each entry checked.

An entry is ``sha256(data) + "\\n" + data``, written under a temporary name and renamed, so a
crash leaves no half-written entry. Any entry that cannot be read, or whose digest does not
match, is a miss (and is removed). A cache directory that cannot be used makes the run go
without a cache (the command says so once).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


class Kind(enum.Enum):
    """A namespace of the cache and what its keys are."""

    METADATA = "metadata"  # core metadata of a file, by the file's sha256
    METADATA_SOURCE = "metadata-source"  # where an sdist's metadata came from, by its sha256
    SDIST_BUILD = "sdist-build"  # an sdist's build requirements, by its sha256
    SIZE = "size"  # a file's size, by its sha256
    RESOLUTION = "resolution"  # a target's resolution and the pages it read, by the inputs' digest
    LOCK_RUN = "lock-run"  # the last complete warmup of a lock and matrix, by their digest


class Cache:
    """Entries under ``root/<kind>/<key>``; ``root`` None means no cache (every read a miss)."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @classmethod
    def open(cls, root: Path) -> tuple[Cache, str | None]:
        """The cache at ``root``, or no cache and why, when ``root`` cannot be written."""
        try:
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=root):
                pass
        except OSError as exc:
            return cls(None), f"cache {root} is not usable ({exc.strerror or exc}): running without it"
        return cls(root), None

    def get(self, kind: Kind, key: str) -> bytes | None:
        path = self._path(kind, key)
        if path is None:
            return None
        try:
            digest, _, data = path.read_bytes().partition(b"\n")
        except OSError:
            return None
        if digest.decode("ascii", "replace") != hashlib.sha256(data).hexdigest():
            path.unlink(missing_ok=True)
            return None
        return data

    def put(self, kind: Kind, key: str, data: bytes) -> None:
        path = self._path(kind, key)
        if path is None:
            return
        try:
            write_atomically(path, [hashlib.sha256(data).hexdigest().encode(), b"\n", data])
        except OSError:
            pass  # a cache that cannot take an entry is a cache without it

    def _path(self, kind: Kind, key: str) -> Path | None:
        if self.root is None or not key or "/" in key or key.startswith("."):
            return None
        return self.root / kind.value / key


def key_of(value: object) -> str:
    """The cache key of everything an entry depends on (a JSON-able value)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``path`` under a temporary name in its folder, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with open(handle, "wb") as stream:
            stream.writelines(chunks)
        os.chmod(name, 0o666 & ~_umask())  # as open() would have made it, not mkstemp's 0600
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)
