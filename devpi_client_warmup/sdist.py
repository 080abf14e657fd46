"""What an sdist needs to be built offline: its build requirements and how static its metadata is."""

from __future__ import annotations

import email.parser
import json
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

# pip's fallback for projects without [build-system] (setup.py only)
LEGACY_BUILD_REQUIRES = ("setuptools>=40.8.0",)


@dataclass(frozen=True)
class Sdist:
    build_requires: tuple[str, ...]
    static_dependencies: bool  # PEP 643: PKG-INFO 2.2+ whose Requires-Dist is not dynamic

    def to_json(self) -> bytes:
        return json.dumps(
            {"build_requires": self.build_requires, "static": self.static_dependencies}
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Sdist:
        value = json.loads(data)
        return cls(tuple(value["build_requires"]), bool(value["static"]))

    @property
    def metadata_source(self) -> str:
        if self.static_dependencies:
            return "its static PEP 643 metadata"
        return "metadata built on this machine (dynamic: it may differ on the target)"


def inspect(path: Path) -> Sdist:
    """Read ``pyproject.toml`` and ``PKG-INFO`` from the top folder of an sdist."""
    pyproject = _member(path, "pyproject.toml")
    build_system = tomllib.loads(pyproject.decode("utf-8")).get("build-system", {}) if pyproject else {}
    requires = tuple(build_system.get("requires", LEGACY_BUILD_REQUIRES))
    pkg_info = _member(path, "PKG-INFO")
    static = False
    if pkg_info:
        message = email.parser.BytesParser().parsebytes(pkg_info, headersonly=True)
        dynamic = {value.lower() for value in message.get_all("Dynamic", [])}
        static = (
            Version(message.get("Metadata-Version", "1.0")) >= Version("2.2")
            and "requires-dist" not in dynamic
        )
    return Sdist(requires, static)


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


def _member(path: Path, name: str) -> bytes | None:
    """``<top>/name`` from a .tar.gz or .zip sdist, if present."""
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/" + name)]
            return archive.read(names[0]) if names else None
    with tarfile.open(path) as archive:
        for member in archive:
            if member.isfile() and member.name.count("/") == 1 and member.name.endswith("/" + name):
                stream = archive.extractfile(member)
                return stream.read() if stream else None
    return None
