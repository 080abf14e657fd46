"""The cache is disposable: any damaged or edited entry is a miss, an unusable cache is none."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.devpi import DevpiScene, run

LINUX = "manylinux_2_28_x86_64"
ARGS = ("pure-a", "static-sdist", "--python", "3.12", "--platform", LINUX)


def warmed(report: Path) -> set[str]:
    return {f["name"] for t in json.loads(report.read_text())["targets"] for f in t["files"]}


def test_damaged_edited_or_unusable_cache_entries_are_misses(
    devpi: DevpiScene, private_cache: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    devpi.warmup(*ARGS, "--report", str(report), check_exit=0)
    expected = warmed(report)
    assert "pure_b-1.0-py3-none-any.whl" in expected  # pure-a 2.0 and static-sdist need it
    cache = private_cache / "devpi-client-warmup"
    entries = sorted(p for p in cache.rglob("*") if p.is_file())
    assert {p.parent.name for p in entries} >= {"metadata", "resolution", "sdist-build", "size"}

    # edited: metadata that drops a dependency, the digest line kept; and a resolution memo
    # rewritten with a valid digest but the wrong shape
    for path in entries:
        if path.parent.name == "metadata":
            text = path.read_text()
            path.write_text("\n".join(line for line in text.split("\n") if "Requires-Dist" not in line))
        elif path.parent.name == "resolution":
            data = b'{"pages": 1, "picks": "x"}'
            path.write_bytes(hashlib.sha256(data).hexdigest().encode() + b"\n" + data)
    proc = devpi.warmup(*ARGS, "--report", str(report), check_exit=0)
    assert warmed(report) == expected, proc.stdout

    # damaged: truncated, garbage, empty
    for number, path in enumerate(p for p in cache.rglob("*") if p.is_file()):
        path.write_bytes([b"", b"\x00\xff garbage", path.read_bytes()[:7]][number % 3])
    proc = devpi.warmup(*ARGS, "--report", str(report), check_exit=0)
    assert warmed(report) == expected, proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr

    # a cache path that is a file: one warning, then the run goes without a cache
    for path in sorted(cache.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    cache.rmdir()
    cache.write_text("not a folder")
    proc = devpi.warmup(*ARGS, "--report", str(report), check_exit=0)
    assert warmed(report) == expected
    warnings = [line for line in (proc.stdout + proc.stderr).splitlines() if "running without it" in line]
    assert len(warnings) == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


@contextmanager
def read_only(tree: Path) -> Iterator[None]:
    """``tree`` cannot be written, not even by root (as an immutable tree), until the end."""
    if os.geteuid() == 0:
        run(["chattr", "-R", "+i", str(tree)])
    else:
        for path in [tree, *tree.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            run(["chattr", "-R", "-i", str(tree)])
        else:
            for path in [tree, *tree.rglob("*")]:
                path.chmod(path.stat().st_mode | 0o200)


def test_a_read_only_cache_means_one_warning_and_a_run_without_it(
    devpi: DevpiScene, private_cache: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    devpi.warmup(*ARGS, "--report", str(report), check_exit=0)
    expected = warmed(report)
    cache = private_cache / "devpi-client-warmup"
    before = {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()}
    with read_only(cache):
        with pytest.raises(OSError):
            (cache / "probe").write_text("")  # truly read-only, whoever runs the tests
        proc = devpi.warmup(*ARGS, "--report", str(report), check_exit=0)
    assert warmed(report) == expected, proc.stdout
    output = proc.stdout + proc.stderr
    warnings = [line for line in output.splitlines() if "running without it" in line]
    assert len(warnings) == 1, output
    assert re.fullmatch(
        rf"devpi warmup: cache {re.escape(str(cache))} is not usable \((Permission denied|Operation not permitted)\):"
        " running without it",
        warnings[0],
    ), output
    assert "Traceback" not in output
    assert {p: p.read_bytes() for p in cache.rglob("*") if p.is_file()} == before
