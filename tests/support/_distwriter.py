"""Stdlib-only writers for wheels and sdists.

This module is used by the test-suite *and* shipped inside the
``warmup-backend`` build backend wheel, so it must stay importable on
Python 3.9 .. 3.13 with nothing but the standard library.
"""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import itertools
import re
import tarfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

# A fixed timestamp keeps the archives (and so their hashes) reproducible.
ZIP_DATE = (2020, 1, 1, 0, 0, 0)
TAR_MTIME = 1577836800


def normalize(name: str) -> str:
    """PEP 503 normalized project name (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def dist_name(name: str) -> str:
    """Name as used in wheel/sdist filenames (``foo-bar`` -> ``foo_bar``)."""
    return normalize(name).replace("-", "_")


def module_name(name: str) -> str:
    """Import name of the single top-level module of a test dist."""
    return dist_name(name)


def dist_info_name(name: str, version: str) -> str:
    return f"{dist_name(name)}-{version}.dist-info"


def expand_tags(tag: str) -> list[str]:
    """Expand a compressed tag set (``py2.py3-none-a.b``) into single tags."""
    pyvers, abis, plats = (part.split(".") for part in tag.split("-"))
    return ["-".join(t) for t in itertools.product(pyvers, abis, plats)]


def metadata_text(
    name: str,
    version: str,
    requires_dist: Iterable[str] = (),
    requires_python: str | None = None,
) -> str:
    """Core metadata 2.1 (METADATA / PKG-INFO) for a test dist."""
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    # as setuptools writes a license text: a line of blanks continues the field
    lines += ["License: Copyright (c) the warmup tests", "        ", "        All rights reserved."]
    lines += [f"Requires-Dist: {req}" for req in requires_dist]
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines.append("Description-Content-Type: text/plain")
    return "\n".join(lines) + f"\n\n{name} {version}: a test distribution.\n"


def wheel_text(tag: str) -> str:
    tags = expand_tags(tag)
    purelib = all(t.rsplit("-", 1)[1] == "any" for t in tags)
    lines = [
        "Wheel-Version: 1.0",
        "Generator: warmup-tests",
        f"Root-Is-Purelib: {'true' if purelib else 'false'}",
    ]
    lines += [f"Tag: {t}" for t in tags]
    return "\n".join(lines) + "\n"


def record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def write_wheel(
    dest: Path,
    name: str,
    version: str,
    files: Mapping[str, bytes],
    *,
    tag: str = "py3-none-any",
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
) -> Path:
    """Write ``files`` (archive path -> bytes) plus dist-info as a wheel."""
    dest.mkdir(parents=True, exist_ok=True)
    dist_info = dist_info_name(name, version)
    contents = dict(files)
    contents[f"{dist_info}/METADATA"] = metadata_text(name, version, requires_dist, requires_python).encode(
        "utf-8"
    )
    contents[f"{dist_info}/WHEEL"] = wheel_text(tag).encode("utf-8")
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in contents.items():
        writer.writerow([path, record_hash(data), str(len(data))])
    writer.writerow([f"{dist_info}/RECORD", "", ""])
    contents[f"{dist_info}/RECORD"] = record.getvalue().encode("utf-8")

    target = dest / f"{dist_name(name)}-{version}-{tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in contents.items():
            info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return target


def write_sdist(dest: Path, name: str, version: str, files: Mapping[str, bytes]) -> Path:
    """Write ``files`` (paths relative to the top dir) as ``name-version.tar.gz``."""
    dest.mkdir(parents=True, exist_ok=True)
    top = f"{dist_name(name)}-{version}"
    target = dest / f"{top}.tar.gz"
    with (
        open(target, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf,
    ):
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size = len(data)
            info.mtime = TAR_MTIME
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return target
