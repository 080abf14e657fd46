"""What an sdist needs to be built offline, and its core metadata read without building it."""

from __future__ import annotations

import email.parser
import enum
import functools
import json
import re
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from .._compat import tomllib
from .cache import Kind

if TYPE_CHECKING:
    from .downloads import Downloads
    from .files import Files

# pip's fallback for projects without [build-system] (setup.py only); pip before 24.1
# (23.x is what a fresh CPython 3.9-3.11 venv carries) also asks for wheel
LEGACY_BUILD_REQUIRES = ("setuptools>=40.8.0", "wheel")


class MetadataSource(enum.Enum):
    """Where the dependencies of an sdist that resolution used came from."""

    STATIC = "its static PEP 643 metadata (PKG-INFO)"
    WHEEL = "the METADATA of a wheel of the same release (for another platform)"
    LEGACY = "its PKG-INFO and egg-info requires.txt (a legacy sdist: best effort)"
    BUILT = "metadata built on this machine by its build backend (it may differ on the target)"


@dataclass(frozen=True)
class Sdist:
    build_requires: tuple[str, ...]

    def to_json(self) -> bytes:
        return json.dumps({"build_requires": self.build_requires}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Sdist:
        requires = json.loads(data)["build_requires"]
        if not isinstance(requires, list) or not all(isinstance(item, str) for item in requires):
            raise ValueError("build_requires is not a list of strings")
        return cls(tuple(requires))


#: build requirements that tell which toolchain building an sdist needs on the target
_TOOLCHAINS = {
    "maturin": "Rust (cargo)", "setuptools-rust": "Rust (cargo)",
    "cython": "a C compiler", "cffi": "a C compiler", "pybind11": "a C++ compiler", "nanobind": "a C++ compiler",
    "scikit-build-core": "CMake and a C/C++ compiler", "scikit-build": "CMake and a C/C++ compiler",
    "cmake": "CMake and a C/C++ compiler", "meson-python": "Meson and a C/C++ compiler (Fortran for some)",
    "numpy": "a C compiler (NumPy headers)",
}  # fmt: skip


def toolchains(build_requires: Iterable[str]) -> list[str]:
    """What building an sdist with these build requirements needs, where they tell."""
    names = [
        canonicalize_name(re.split(r"[\s;<>=!~\[(]", requirement.strip(), maxsplit=1)[0])
        for requirement in build_requires
    ]
    return list(dict.fromkeys(_TOOLCHAINS[name] for name in names if name in _TOOLCHAINS))


class SdistFacts:
    """What builds each sdist of the index, read from its body once and then kept by its
    content, and where resolution read its dependencies from."""

    def __init__(self, files: Files, downloads: Downloads) -> None:
        self._files = files
        self._downloads = downloads

    def build_info(self, url: str) -> Sdist:
        """What the sdist at ``url`` needs to build."""
        kept = self._files.fact(url, Kind.SDIST_BUILD)
        if kept is not None:
            try:
                return Sdist.from_json(kept)
            except (ValueError, KeyError, TypeError):
                pass  # a damaged entry is a miss
        info = inspect(self._downloads.spool(self._files.state(url)))
        self._files.remember(url, Kind.SDIST_BUILD, info.to_json())
        return info

    def metadata_source(self, url: str) -> MetadataSource | None:
        """Where the dependencies of the sdist at ``url`` came from, when resolution read them."""
        kept = self._files.fact(url, Kind.METADATA_SOURCE)
        return MetadataSource.__members__.get(kept.decode("ascii", "replace")) if kept else None


def inspect(path: Path) -> Sdist:
    """Read the build requirements from the ``pyproject.toml`` of an sdist."""
    pyproject = _top(path, "pyproject.toml")
    build_system = tomllib.loads(pyproject.decode("utf-8")).get("build-system", {}) if pyproject else {}
    return Sdist(tuple(build_system.get("requires", LEGACY_BUILD_REQUIRES)))


def static_metadata(path: Path) -> bytes | None:
    """PKG-INFO when PEP 643 makes it binding: Metadata-Version 2.2 or later, and neither
    Requires-Dist nor Requires-Python declared ``Dynamic``."""
    pkg_info = _top(path, "PKG-INFO")
    if pkg_info is None:
        return None
    message = email.parser.BytesParser().parsebytes(pkg_info, headersonly=True)
    dynamic = {value.lower() for value in message.get_all("Dynamic", [])}
    if Version(message.get("Metadata-Version", "1.0")) < Version("2.2"):
        return None
    return None if dynamic & {"requires-dist", "requires-python"} else pkg_info


def legacy_metadata(path: Path) -> bytes | None:
    """PKG-INFO with the Requires-Dist of setuptools' ``*.egg-info/requires.txt``: what a
    setuptools build of the sdist declared when it was made (best effort: setup.py may compute
    other dependencies on another machine). None if the sdist has no ``.egg-info``."""
    members = _members(path)
    pkg_info = _top(path, "PKG-INFO")
    egg_info = next((name for name in members if _EGG_INFO_RE.fullmatch(name)), None)
    if pkg_info is None or egg_info is None:
        return None
    requires = members.get(egg_info[: -len("PKG-INFO")] + "requires.txt", b"")
    text = pkg_info.decode("utf-8", "replace").replace("\r\n", "\n")
    headers = text.split("\n\n", 1)[0].split("\n")
    lines = [line for line in headers if line and not line.startswith("Requires-Dist:")]
    lines += [f"Requires-Dist: {req}" for req in _requires_txt(requires.decode("utf-8", "replace"))]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _requires_txt(text: str) -> list[str]:
    """``requires.txt`` sections (``[extra]``, ``[:marker]``, ``[extra:marker]``) as Requires-Dist."""
    requirements: list[str] = []
    extra = marker = ""
    for line in (line.strip() for line in text.splitlines()):
        if line.startswith("[") and line.endswith("]"):
            extra, _, marker = line[1:-1].partition(":")
        elif line:
            markers = [f"({marker})"] if marker else []
            markers += [f'extra == "{extra}"'] if extra else []
            requirements.append(line + ("; " + " and ".join(markers) if markers else ""))
    return requirements


def metadata_file(fields: dict[str, Any]) -> bytes:
    """Core metadata (the fields resolution needs) from the JSON form in pip's report."""
    lines = [f"Metadata-Version: {fields.get('metadata_version', '2.1')}"]
    for key in ("name", "version", "requires_python"):
        if fields.get(key):
            lines.append(f"{_HEADERS[key]}: {fields[key]}")
    for key in ("requires_dist", "provides_extra", "dynamic"):
        lines += [f"{_HEADERS[key]}: {value}" for value in fields.get(key, [])]
    return ("\n".join(lines) + "\n").encode("utf-8")


_HEADERS = {
    "name": "Name",
    "version": "Version",
    "requires_python": "Requires-Python",
    "requires_dist": "Requires-Dist",
    "provides_extra": "Provides-Extra",
    "dynamic": "Dynamic",
}


_EGG_INFO_RE = re.compile(r"[^/]+/(src/)?[^/]+\.egg-info/PKG-INFO")
_WANTED_RE = re.compile(r"[^/]+/(PKG-INFO|pyproject\.toml|(src/)?[^/]+\.egg-info/(PKG-INFO|requires\.txt))")


def _top(path: Path, name: str) -> bytes | None:
    """The member ``<top folder>/name`` of the sdist."""
    return next((data for member, data in _members(path).items() if member.split("/", 1)[1] == name), None)


@functools.lru_cache(maxsize=16)
def _members(path: Path) -> dict[str, bytes]:
    """The members any reader here needs (PKG-INFO, pyproject.toml, egg-info), read in one pass
    over the .tar.gz or .zip sdist. A spooled file's name holds its sha256: one path, one content."""
    found: dict[str, bytes] = {}
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if _WANTED_RE.fullmatch(name):
                    found.setdefault(name, archive.read(name))
        return found
    with tarfile.open(path) as archive:
        for member in archive:
            stream = (
                archive.extractfile(member) if member.isfile() and _WANTED_RE.fullmatch(member.name) else None
            )
            if stream is not None:
                found.setdefault(member.name, stream.read())
    return found
