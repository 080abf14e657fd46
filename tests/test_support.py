"""Smoke tests of the hermetic test infrastructure (no ``devpi warmup`` needed)."""

from __future__ import annotations

import csv
import hashlib
import io
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Callable

import pytest
import requests
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from tests.support._distwriter import record_hash
from tests.support.devpi import DevpiScene
from tests.support.dists import NATPKG_TAGS, Dists
from tests.support.upstream import JSON_TYPE, Upstream
from tests.support.venvs import pip_download, pip_install, venv_python_ok

PURE_A_2 = "pure_a-2.0-py3-none-any.whl"
PURE_B_1 = "pure_b-1.0-py3-none-any.whl"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- dists --------------------------------------------------------------------


def test_wheels_have_valid_records(dists: Dists) -> None:
    wheels = [f for f in dists.files if f.suffix == ".whl"]
    assert len(wheels) == 27
    for wheel in wheels:
        name, version, _, tags = parse_wheel_filename(wheel.name)
        with zipfile.ZipFile(wheel) as zf:
            record_name = f"{str(name).replace('-', '_')}-{version}.dist-info/RECORD"
            rows = list(csv.reader(io.StringIO(zf.read(record_name).decode())))
            assert {r[0] for r in rows} == set(zf.namelist())
            for path, digest, size in rows:
                if path != record_name:
                    data = zf.read(path)
                    assert (digest, size) == (record_hash(data), str(len(data))), path
            wheel_meta = zf.read(record_name.replace("RECORD", "WHEEL")).decode()
        assert sorted(line[5:] for line in wheel_meta.splitlines() if line.startswith("Tag: ")) == sorted(
            str(t) for t in tags
        )
        assert ("Root-Is-Purelib: true" in wheel_meta) == wheel.name.endswith("-any.whl")

    natpkg = dists[f"natpkg-1.0-{NATPKG_TAGS[0]}.whl"]
    with zipfile.ZipFile(natpkg) as zf:
        assert zf.read("natpkg/__init__.py").decode() == (
            f'__version__ = "1.0"\nWHEEL_TAG = "{NATPKG_TAGS[0]}"\n'
        )
    assert not any(f.startswith("natpkg") and f.endswith(".tar.gz") for f in dists.filenames)


def test_sdist_layout(dists: Dists) -> None:
    sdist = dists["sdist_only-1.0.tar.gz"]
    assert parse_sdist_filename(sdist.name) == ("sdist-only", Version("1.0"))
    with tarfile.open(sdist) as tf:
        assert sorted(tf.getnames()) == [
            "sdist_only-1.0/PKG-INFO",
            "sdist_only-1.0/pyproject.toml",
            "sdist_only-1.0/src/sdist_only/__init__.py",
            "sdist_only-1.0/warmup-backend.json",
        ]
        pkg_info = tf.extractfile("sdist_only-1.0/PKG-INFO").read().decode()  # type: ignore[union-attr]
    assert pkg_info.startswith("Metadata-Version: 2.1\n")
    assert "Requires-Dist: pure-b\n" in pkg_info


# -- upstream ------------------------------------------------------------------


def test_upstream_serves_html_json_and_files(upstream: Upstream, dists: Dists) -> None:
    index = requests.get(upstream.url, timeout=10)
    assert index.status_code == 200
    assert '<a href="pure-a/">pure-a</a>' in index.text
    assert '<a href="warmup-backend-helper/">' in index.text

    page = requests.get(upstream.url + "pure-a/", timeout=10).text
    for filename in ("pure_a-1.0-py3-none-any.whl", PURE_A_2):
        digest = sha256(dists[filename].read_bytes())
        assert f'href="../../files/{filename}#sha256={digest}"' in page
    page = requests.get(upstream.url + "py313plus/", timeout=10).text
    assert 'data-requires-python="&gt;=3.13"' in page

    redirect = requests.get(upstream.url + "Pure_A/", timeout=10, allow_redirects=False)
    assert (redirect.status_code, redirect.headers["Location"]) == (301, "/simple/pure-a/")
    assert requests.get(upstream.url + "nope/", timeout=10).status_code == 404

    accept = {"Accept": f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.1"}
    root = requests.get(upstream.url, headers=accept, timeout=10)
    assert root.headers["Content-Type"] == JSON_TYPE
    assert {"name": "natpkg"} in root.json()["projects"]
    data = requests.get(upstream.url + "py313plus/", headers=accept, timeout=10).json()
    assert data["meta"] == {"api-version": "1.0"}
    assert data["name"] == "py313plus"
    [entry] = data["files"]
    assert entry["requires-python"] == ">=3.13"
    content = dists[entry["filename"]].read_bytes()
    assert entry["hashes"] == {"sha256": sha256(content)}

    response = requests.get(requests.compat.urljoin(upstream.url + "py313plus/", entry["url"]), timeout=10)
    assert response.content == content
    assert response.headers["Content-Length"] == str(len(content))
    assert upstream.file_gets(entry["filename"]) == 1
    assert ("GET", "/simple/py313plus/") in upstream.requests


def test_upstream_add_and_faults(upstream: Upstream, dists: Dists, tmp_path: Path) -> None:
    from tests.support.dists import make_wheel

    new = make_wheel(tmp_path / "new", "pure-a", "3.0")
    upstream.add(new)
    assert new.name in requests.get(upstream.url + "pure-a/", timeout=10).text

    good = dists[PURE_B_1].read_bytes()
    url = upstream.file_url(PURE_B_1)

    upstream.corrupt(PURE_B_1)
    corrupted = requests.get(url, timeout=10).content
    assert len(corrupted) == len(good) and corrupted != good

    upstream.truncate(PURE_B_1)
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(url, timeout=10)

    upstream.fail(PURE_B_1, status=503)
    assert requests.get(url, timeout=10).status_code == 503

    upstream.heal(PURE_B_1)
    assert requests.get(url, timeout=10).content == good
    # the corrupted GET completed; the truncated and failed ones did not count
    assert upstream.file_gets(PURE_B_1) == 2
    assert upstream.paths().count(f"/files/{PURE_B_1}") == 4


# -- devpi ---------------------------------------------------------------------


def test_devpi_mirror_download_cache_and_offline(
    devpi: DevpiScene, upstream: Upstream, dists: Dists, tmp_path: Path
) -> None:
    assert devpi.client.run("use").stdout.count(devpi.index_url) >= 1
    links = devpi.links("pure-a")
    assert sorted(links) == ["pure_a-1.0-py3-none-any.whl", PURE_A_2]
    assert all(f"/{devpi.mirror_index}/+f/" in url for url in links.values())

    # a mirror file not fetched yet: JSON meta without last_modified
    meta = devpi.file_meta(links[PURE_A_2])
    assert meta["hashes"] == {"sha256": sha256(dists[PURE_A_2].read_bytes())}
    assert meta["url"] == upstream.file_url(PURE_A_2)
    assert "last_modified" not in meta
    assert upstream.file_gets(PURE_A_2) == 0

    download = tmp_path / "download"
    pip_download(download, "--no-deps", "pure-a==2.0", index_url=devpi.simple_url)
    assert (download / PURE_A_2).read_bytes() == dists[PURE_A_2].read_bytes()
    devpi.wait_cached(links[PURE_A_2])
    assert devpi.is_cached(links[PURE_A_2])
    assert not devpi.is_cached(links["pure_a-1.0-py3-none-any.whl"])

    devpi.server.restart(offline=True)
    upstream.clear_log()
    # offline: only cached files are listed, uncached projects are 404
    assert list(devpi.links("pure-a")) == [PURE_A_2]
    assert requests.get(devpi.simple_url + "pure-b/", timeout=10).status_code == 404
    assert devpi.links("pure-b") == {}
    offline = tmp_path / "offline"
    pip_download(offline, "--no-deps", "pure-a==2.0", index_url=devpi.simple_url)
    assert (offline / PURE_A_2).exists()
    failed = pip_download(offline, "--no-deps", "pure-b", index_url=devpi.simple_url, check=False)
    assert failed.returncode != 0
    assert "No matching distribution found for pure-b" in failed.stderr
    assert upstream.requests == []


def test_devpi_fetches_each_file_from_upstream_once(
    devpi: DevpiScene, upstream: Upstream, tmp_path: Path
) -> None:
    for attempt in range(2):
        pip_download(tmp_path / str(attempt), "pure-a==2.0", index_url=devpi.simple_url)
    assert upstream.file_gets(PURE_A_2) == 1
    assert upstream.file_gets(PURE_B_1) == 1
    assert upstream.file_gets("pure_a-1.0-py3-none-any.whl") == 0


def test_devpi_behaviour_on_upstream_faults(devpi: DevpiScene, upstream: Upstream, dists: Dists) -> None:
    """Pin what devpi-server does when the upstream misbehaves (for warmup's error handling)."""
    links = {**devpi.links("pure-a"), **devpi.links("pure-b"), **devpi.links("needs-win")}
    pure_a_1, needs_win = "pure_a-1.0-py3-none-any.whl", "needs_win-1.0-py3-none-any.whl"

    # corrupt bytes are streamed with 200 (headers go out first) but never cached
    upstream.corrupt(pure_a_1)
    response = requests.get(links[pure_a_1], timeout=30)
    assert response.status_code == 200
    assert response.content != dists[pure_a_1].read_bytes()
    # a truncated body is an error (500 from waitress, or a broken transfer)
    upstream.truncate(PURE_B_1)
    try:
        assert requests.get(links[PURE_B_1], timeout=30).status_code >= 500
    except requests.exceptions.RequestException:
        pass
    # upstream error statuses: 5xx -> 502, 404 -> 404
    upstream.fail(needs_win, status=500)
    assert requests.get(links[needs_win], timeout=30).status_code == 502
    upstream.fail(needs_win, status=404)
    assert requests.get(links[needs_win], timeout=30).status_code == 404
    # HEAD answers 200 and makes devpi start an upstream GET, yet caches nothing
    assert requests.head(links[PURE_A_2], timeout=30).status_code == 200
    time.sleep(0.5)
    assert not any(devpi.is_cached(links[f]) for f in (pure_a_1, PURE_B_1, needs_win, PURE_A_2))

    devpi.server.restart(offline=True)
    upstream.clear_log()
    # offline: an uncached file is 502, its JSON meta still answers (without last_modified)
    assert requests.get(links[PURE_A_2], timeout=30).status_code == 502
    assert "last_modified" not in devpi.file_meta(links[PURE_A_2])
    assert devpi.links("pure-a") == {}
    assert upstream.requests == []


@pytest.mark.parametrize("python_version", ["3.9", "3.13"])
def test_venv_installs_from_devpi(
    devpi: DevpiScene, make_venv: Callable[[str], Path], python_version: str
) -> None:
    venv = make_venv(python_version)
    pip_install(venv, "pure-a", "needs-old-py", "needs-win", index_url=devpi.simple_url)
    code = (
        "import sys, importlib.util as u, pure_a, pure_b, needs_old_py, needs_win;"
        "print(sys.version_info[:2], pure_a.__version__,"
        " u.find_spec('old_py_dep') is not None, u.find_spec('winonly_dep') is not None)"
    )
    major, minor = python_version.split(".")
    old_py = (int(major), int(minor)) < (3, 11)
    assert venv_python_ok(venv, code).stdout.strip() == f"({major}, {minor}) 2.0 {old_py} False"
    py313plus = pip_install(venv, "py313plus", index_url=devpi.simple_url, check=False)
    assert (py313plus.returncode == 0) == (python_version == "3.13")


def test_sdist_builds_with_backend_from_devpi(
    devpi: DevpiScene, upstream: Upstream, make_venv: Callable[[str], Path]
) -> None:
    venv = make_venv("3.12")
    proc = pip_install(venv, "sdist-only", index_url=devpi.simple_url)
    assert "Successfully installed" in proc.stdout
    out = venv_python_ok(venv, "import sdist_only, pure_b; print(sdist_only.__version__)")
    assert out.stdout.strip() == "1.0"
    # the backend and its helper came through devpi from the upstream
    assert upstream.file_gets("warmup_backend-1.0-py3-none-any.whl") == 1
    assert upstream.file_gets("warmup_backend_helper-1.0-py3-none-any.whl") == 1
