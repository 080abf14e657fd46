"""Fetch once, re-run for free, and refuse bad bytes: against the real devpi-server."""

from __future__ import annotations

import email.parser
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from devpi_client_warmup.gateway import Gateway, Sees, _allows, _announce_metadata, _lean, _Page, _release
from devpi_client_warmup.index.access import IndexAccess
from devpi_client_warmup.index.cache import Cache
from devpi_client_warmup.index.downloads import Downloads
from devpi_client_warmup.index.files import Files
from devpi_client_warmup.index.sdist import MetadataSource, SdistFacts
from devpi_client_warmup.matrix import Platform, Python, Target
from tests.support.authproxy import LockedScene
from tests.support.devpi import DevpiScene, clean_env, wait_for
from tests.support.dists import make_wheel
from tests.support.upstream import Upstream

LINUX = "manylinux_2_28_x86_64"
SHARED = ("pure_a-2.0-py3-none-any.whl", "pure_b-1.0-py3-none-any.whl", "needs_win-1.0-py3-none-any.whl")


def test_shared_files_are_fetched_once_and_a_rerun_fetches_nothing(
    devpi: DevpiScene, upstream: Upstream, tmp_path: Path
) -> None:
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"))
    args = ("pure-a", "needs-win", "natpkg", "--python", "3.9,3.12,3.13", "--platform", f"{LINUX},win_amd64")
    upstream.clear_log()
    devpi.warmup(*args, "--report", str(tmp_path / "first.json"), check_exit=0, env=env)
    for filename in SHARED:  # needed by all six targets
        assert upstream.file_gets(filename) == 1, filename
    first = json.loads((tmp_path / "first.json").read_text())
    assert len(first["targets"]) == 6
    assert all(f["fetched"] and f["cached_before"] is False for t in first["targets"] for f in t["files"])

    upstream.clear_log()
    devpi.warmup(*args, "--report", str(tmp_path / "second.json"), check_exit=0, env=env)
    assert [path for path in upstream.paths() if "/files/" in path] == []
    second = json.loads((tmp_path / "second.json").read_text())
    files = [f for t in second["targets"] for f in t["files"]]
    assert files and all(f["cached_before"] is True and f["fetched"] is False for f in files)
    assert all(f["size"] and f["size"] > 0 for f in files)
    # a re-run says so, per target
    second_run = devpi.warmup(*args, check_exit=0, env=env)
    ok_lines = [line for line in second_run.stdout.splitlines() if ": ok (" in line]
    assert len(ok_lines) == 6 and all(
        "pip's earlier answer reused" in line and "everything was stored already" in line for line in ok_lines
    ), second_run.stdout


def test_what_devpi_stores_after_a_run_is_the_report_plus_the_listed_extra_files(
    devpi: DevpiScene, tmp_path: Path
) -> None:
    # pure-a 2.0 needs pure-b>=1, which the constraint rules out: pip reads 2.0's metadata (its
    # wheel goes through devpi), then backtracks to pure-a 1.0
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("pure-b<1\n")
    report = tmp_path / "report.json"
    proc = devpi.warmup("pure-a", "-c", str(constraints), "--python", "3.12", "--platform", LINUX,
                        "--report", str(report), check_exit=0)  # fmt: skip
    data = json.loads(report.read_text())
    warmed = {f["name"] for t in data["targets"] for f in t["files"]}
    extra = {f["name"] for f in data["extra_files"]}
    assert warmed == {"pure_a-1.0-py3-none-any.whl"}
    assert extra == {"pure_a-2.0-py3-none-any.whl"}
    assert "devpi now also stores 1 file(s) no target needs (read while resolving): pure_a-2.0" in proc.stdout
    devpi.server.restart(offline=True)  # lists exactly what devpi stores
    stored = {name for project in ("pure-a", "pure-b") for name in devpi.links(project)}
    assert stored == warmed | extra


def test_bytes_that_do_not_match_the_index_hash_are_rejected(
    devpi: DevpiScene, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.corrupt("pure_b-1.0-py3-none-any.whl")
    dest = tmp_path / "wheelhouse"
    proc = devpi.warmup("pure-a", "--python", "3.12", "--platform", LINUX, "--dest", str(dest),
                        "--report", str(tmp_path / "report.json"), check_exit=1)  # fmt: skip
    line = next(line for line in proc.stdout.splitlines() if line.startswith(f"3.12-{LINUX}"))
    assert ": ok" not in line and "pure_b-1.0-py3-none-any.whl: sha256 mismatch" in line
    assert not dest.exists() or sorted(p.name for p in dest.iterdir()) == []
    report = json.loads((tmp_path / "report.json").read_text())
    assert "sha256 mismatch" in report["targets"][0]["problems"][0]
    assert "Traceback" not in proc.stdout + proc.stderr

    upstream.heal("pure_b-1.0-py3-none-any.whl")  # the re-run resumes cleanly
    devpi.warmup("pure-a", "--python", "3.12", "--platform", LINUX, "--dest", str(dest), check_exit=0)
    assert sorted(p.name for p in dest.iterdir()) == [
        "pure_a-2.0-py3-none-any.whl",
        "pure_b-1.0-py3-none-any.whl",
    ]


def test_a_dropped_connection_fails_only_its_target_and_a_rerun_resumes(
    devpi: DevpiScene, upstream: Upstream
) -> None:
    upstream.truncate("winonly_dep-1.0-py3-none-any.whl")  # Windows targets only
    proc = devpi.warmup("needs-win", "pure-a", "--python", "3.12", "--platform", f"{LINUX},win_amd64",
                        check_exit=1)  # fmt: skip
    assert f"3.12-{LINUX}: ok" in proc.stdout
    assert "3.12-win_amd64: FAILED" in proc.stdout and "winonly_dep-1.0-py3-none-any.whl" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    # the gateway's own tries (one and 3 retries), and pip does not try through it again
    asked = [path for path in upstream.paths() if path.endswith("/winonly_dep-1.0-py3-none-any.whl")]
    assert len(asked) == 4, asked

    upstream.heal("winonly_dep-1.0-py3-none-any.whl")
    proc = devpi.warmup("needs-win", "pure-a", "--python", "3.12", "--platform", f"{LINUX},win_amd64",
                        check_exit=0)  # fmt: skip
    assert "3.12-win_amd64: ok" in proc.stdout
    devpi.server.restart(offline=True)
    assert "winonly_dep-1.0-py3-none-any.whl" in devpi.links("winonly-dep")


def test_a_rerun_on_a_warm_index_transfers_no_file_body(locked_devpi: LockedScene) -> None:
    """Every request of the warmup passes the proxy: on a re-run, files are only probed."""
    proxy = locked_devpi.proxy
    assert proxy is not None
    args = ("pure-a", "needs-win", "sdist-only", "--python", "3.9,3.12", "--platform", f"{LINUX},win_amd64")
    locked_devpi.warmup(*args, check_exit=0)
    assert [r for r in proxy.records("/+f/") if r.method == "GET" and "json" not in r.accept]

    proxy.clear_log()
    locked_devpi.warmup(*args, check_exit=0)
    file_requests = proxy.records("/+f/")
    assert file_requests, "the re-run probes the files"
    assert all(r.method == "GET" and r.accept == "application/json" for r in file_requests), file_requests


def test_a_rerun_reuses_pip_answers_until_the_index_changes(
    devpi: DevpiScene, upstream: Upstream, tmp_path: Path
) -> None:
    def warm(name: str) -> dict[str, object]:
        report = tmp_path / f"{name}.json"
        devpi.warmup("pure-a", "--python", "3.9,3.12", "--platform", LINUX, "--report", str(report),
                     check_exit=0)  # fmt: skip
        return json.loads(report.read_text())

    first = warm("first")
    assert {t["resolved_by"] for t in first["targets"]} == {"pip"}
    second = warm("second")  # every page pip read is unchanged: pip's answer is known
    assert {t["resolved_by"] for t in second["targets"]} == {"memo"}
    assert [t["files"] for t in second["targets"]] == [
        [dict(f, cached_before=True, fetched=False) for f in t["files"]] for t in first["targets"]
    ]

    # a new release, with a local version as the PyTorch index has them (its upstream link
    # quotes "+" as %2B; devpi lists it unquoted): pip must decide again
    upstream.add(make_wheel(tmp_path / "new", "pure-a", "3.0+cpu"))
    third = warm("third")
    assert {t["resolved_by"] for t in third["targets"]} == {"pip"}
    new = "pure_a-3.0+cpu-py3-none-any.whl"
    assert all(new in {f["name"] for f in t["files"]} for t in third["targets"])
    assert all(f["sha256"] for t in third["targets"] for f in t["files"])  # checked against the index
    fourth = warm("fourth")
    assert {t["resolved_by"] for t in fourth["targets"]} == {"memo"}
    assert all(f["cached_before"] and not f["fetched"] for t in fourth["targets"] for f in t["files"])


def test_downloads_run_wider_than_jobs(devpi: DevpiScene, upstream: Upstream) -> None:
    """--download-jobs, not --jobs, sets how many files are fetched at once. The metadata of
    every wheel is in the cache after a first run, so a second index (its own mirror of the
    same upstream) resolves without bodies and then fetches every file at once."""
    args = ("pure-a", "needs-win", "needs-old-py", "natpkg", "--python", "3.9", "--platform", "win_amd64")
    devpi.warmup(*args, check_exit=0)
    second = f"{devpi.mirror_index}-2"  # a name of its own, as the scene's (see setup_shared_scene)
    devpi.client.create_index(second, "type=mirror", f"mirror_url={upstream.url}", "mirror_cache_expiry=0")
    devpi.client.create_index("alice/dev2", f"bases={second}")
    upstream.file_delay = 1.0
    upstream.max_active = 0
    proc = devpi.warmup(*args, "--index", "alice/dev2", "--jobs", "1", "--download-jobs", "6", check_exit=0)
    assert "7 unique files, 7 fetched" in proc.stdout, proc.stdout
    assert upstream.max_active >= 4, upstream.max_active  # one target, files fetched side by side


def test_with_devpi_core_metadata_resolution_waits_for_no_wheel_body(
    devpi: DevpiScene, upstream: Upstream, tmp_path: Path
) -> None:
    """devpi-server --enable-core-metadata and a mirror with mirror_provides_core_metadata: the
    gateway takes each wheel's METADATA from devpi, so resolving reads no wheel body (--check
    moves none at all), and a target is resolved while a large wheel is still streaming."""
    upstream.core_metadata = True
    devpi.client.create_index("alice/meta-upstream", "type=mirror", f"mirror_url={upstream.url}",
                              "mirror_cache_expiry=0", "mirror_provides_core_metadata=True")  # fmt: skip
    devpi.client.create_index("alice/meta", "bases=alice/meta-upstream")
    args = (
        "pure-a",
        "needs-win",
        "natpkg",
        "--python",
        "3.12",
        "--platform",
        "win_amd64",
        "--index",
        "alice/meta",
    )
    upstream.clear_log()
    devpi.warmup(*args, "--check", check_exit=1)
    assert [path for path in upstream.paths() if path.endswith(".whl")] == []
    assert upstream.paths("METADATA"), "devpi never asked the upstream for PEP 658 metadata"

    big = "natpkg-1.0-cp39-abi3-win_amd64.whl"
    upstream.slow_files[big] = 6.0
    report = tmp_path / "report.json"
    devpi.warmup(*args, "--report", str(report), check_exit=0)
    data = json.loads(report.read_text())
    [target] = data["targets"]
    assert target["seconds"] < 6.0 <= data["timings"]["total_seconds"], data["timings"]
    names = {f["name"] for f in target["files"]}
    assert big in names and all(upstream.file_gets(name) == 1 for name in names)


def open_gateway(
    devpi: DevpiScene, workdir: Path, cache: Cache | None = None, **options: Any
) -> AbstractContextManager[Gateway]:
    """The run's gateway in front of the test's devpi index, as the pipeline wires it."""
    access = IndexAccess(
        root_url=devpi.server.url + "/", index_url=devpi.index_url, simple_url=devpi.simple_url
    )
    return gateway_to(access, workdir, cache, **options)


@contextmanager
def gateway_to(
    access: IndexAccess, workdir: Path, cache: Cache | None = None, **options: Any
) -> Iterator[Gateway]:
    """The run's gateway in front of the index ``access`` reaches, as the pipeline wires it."""
    workdir.mkdir(exist_ok=True)
    files = Files(access.http, cache or Cache(None))
    downloads = Downloads(access, files, workdir / "spool")
    with Gateway(
        access, files, downloads, SdistFacts(files, downloads), workdir, check=False, **options
    ) as gateway:
        yield gateway


def test_leaving_the_gateway_waits_for_a_page_it_reads_ahead(
    devpi: DevpiScene, upstream: Upstream, tmp_path: Path
) -> None:
    """A page read ahead is written into the run's folder: leaving the gateway waits for that
    read, so the folder can then be removed whole (a run that ended while devpi was still
    answering one failed to remove its folder)."""
    workdir = tmp_path / "run"
    upstream.stall_project("pure-b", 2)
    try:
        with open_gateway(devpi, workdir) as gateway:
            gateway.prefetch(["pure-b"])
            wait_for(
                lambda: any("/pure-b/" in path for path in upstream.paths()), message="no read of pure-b"
            )
    finally:
        upstream.heal("project:pure-b")
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("prefetch")]
    assert len(list(workdir.glob("*.html"))) == 1  # the page, written before the gateway was left


def test_a_targets_pip_sees_no_file_it_would_not_take(devpi: DevpiScene, tmp_path: Path) -> None:
    """The gateway's pages for a target's pip leave out the wheels of other platforms (pip skips
    them, and on big pages most links are such wheels), the files whose Requires-Python the
    target's Python does not meet (pip skips them too), and the sdists of releases that have a
    wheel for the target (pip takes one file per release, and ranks the wheel first); other
    sdists, pure wheels and the target's own wheels stay. Where pip may refuse wheels
    (``--no-binary``) it gets those sdists too; a pip run for this machine (a metadata build
    here) sees every link of the page (here no wheel is left out for the whole run, see the
    next test)."""
    windows = Target(Python.parse("3.12"), Platform.parse("win_amd64"))
    linux = Target(Python.parse("3.12"), Platform.parse(LINUX))
    old_linux = Target(Python.parse("3.12"), Platform.parse("manylinux2014_x86_64"))
    gateway: Gateway

    def links(index_url: str, project: str) -> list[str]:
        page = requests.get(
            f"{index_url}{project}/", auth=("warmup", gateway.netrc().split()[-1]), timeout=60
        )
        assert page.status_code == 200, page.text
        return sorted(re.findall(r">([^<]+)</a>", page.text))

    for refuse, workdir in ((False, tmp_path / "plain"), (True, tmp_path / "no-binary")):
        with open_gateway(devpi, workdir, pip_may_refuse_wheels=refuse) as gateway:
            for_windows, for_linux = gateway.index_url_for("w", windows), gateway.index_url_for("l", linux)
            for_old_linux = gateway.index_url_for("o", old_linux)
            for_this_machine = for_windows.replace("/~w/", "/~build-here/")
            assert links(for_windows, "natpkg") == ["natpkg-1.0-cp39-abi3-win_amd64.whl"]
            assert links(for_linux, "natpkg") == [
                "natpkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
            ]
            assert len(links(for_this_machine, "natpkg")) == 4
            assert links(for_linux, "wheel-sibling") == ["wheel_sibling-1.0.tar.gz"]
            assert links(for_windows, "wheel-sibling") == [
                "wheel_sibling-1.0-cp39-abi3-win_amd64.whl",
                *(["wheel_sibling-1.0.tar.gz"] if refuse else []),
            ]
            assert links(for_linux, "newer-sdist") == [
                "newer_sdist-1.0-py3-none-any.whl",
                "newer_sdist-2.0.tar.gz",
            ]
            # 2.0's wheel needs glibc 2.28: a manylinux2014 machine may build 2.0 from its sdist
            assert links(for_old_linux, "ladder-pkg") == [
                "ladder_pkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "ladder_pkg-2.0.tar.gz",
            ]
            assert links(for_linux, "ladder-pkg") == [
                "ladder_pkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
                "ladder_pkg-2.0-cp39-abi3-manylinux_2_28_x86_64.whl",
                *(["ladder_pkg-2.0.tar.gz"] if refuse else []),
            ]
            assert len(links(for_this_machine, "ladder-pkg")) == 3
            # py313plus 1.0 requires Python >=3.13: pip for 3.12 would skip it
            for_linux_313 = gateway.index_url_for("n", Target(Python.parse("3.13"), Platform.parse(LINUX)))
            assert links(for_linux, "py313plus") == []
            assert links(for_linux_313, "py313plus") == ["py313plus-1.0-py3-none-any.whl"]
            assert links(for_this_machine, "py313plus") == ["py313plus-1.0-py3-none-any.whl"]
            # devpi's /+f/ is /~f/ on the pages (pip would quote "+" and keep the path twice)
            auth = ("warmup", gateway.netrc().split()[-1])
            page_url = f"{for_linux}pure-a/"
            hrefs = re.findall(r'href="([^"]+)"', requests.get(page_url, auth=auth, timeout=60).text)
            assert hrefs and all("/~f/" in href and "+" not in href for href in hrefs), hrefs
            file_url = urljoin(page_url, hrefs[0])
            assert gateway.devpi_url(file_url) == devpi.links("pure-a")[file_url.rsplit("/", 1)[-1]]
            assert requests.get(file_url, auth=auth, timeout=60).content[:2] == b"PK"


def test_a_wheel_no_target_takes_is_on_no_page_and_still_tells_its_sdists_metadata(
    devpi: DevpiScene, tmp_path: Path
) -> None:
    """The gateway of a run knows every tag its pip runs may accept (the targets' and this
    machine's): a wheel with none of them is on no page, not even a metadata build's, and only
    one such wheel per release stays listed (a pure one and a compiled one). That one still tells the dependencies of its
    release's sdist (wheel-sibling's Windows wheel, for a Linux-only run): nothing is built."""
    linux = Target(Python.parse("3.12"), Platform.parse(LINUX))
    this_machine = Target(Python.parse("3.11"), Platform.parse(LINUX))  # as the pipeline adds sys_tags()
    reachable = frozenset([*this_machine.tags, *linux.tags])
    with open_gateway(devpi, tmp_path, Cache(tmp_path / "cache"), reachable=reachable) as gateway:
        files, sdists = gateway.files, gateway.sdists
        for_linux = gateway.index_url_for("l", linux)
        for_this_machine = for_linux.replace("/~l/", "/~build-here/")
        auth = ("warmup", gateway.netrc().split()[-1])
        for index_url in (for_linux, for_this_machine):
            page = requests.get(f"{index_url}natpkg/", auth=auth, timeout=60)
            assert re.findall(r">([^<]+)</a>", page.text) == [
                "natpkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
            ]
        listed = [url.rsplit("/", 1)[-1] for url in files.listing.release_files("natpkg", "1.0")]
        assert len(listed) == 2  # the one the target takes, and one of the three no pip run takes
        assert "natpkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" in listed

        page = requests.get(f"{for_linux}wheel-sibling/", auth=auth, timeout=60)
        assert re.findall(r">([^<]+)</a>", page.text) == ["wheel_sibling-1.0.tar.gz"]
        [sdist] = [u for u in files.listing.release_files("wheel-sibling", "1.0") if u.endswith(".tar.gz")]
        gateway.builder = None  # a build would refuse the sdist (NoMetadata)
        metadata = gateway.metadata(sdist, "l").decode()
        assert "Requires-Dist: pure-b" in metadata
        assert gateway.refused == {}
        assert sdists.metadata_source(sdist) is MetadataSource.WHEEL


@pytest.mark.parametrize(
    ("opening", "filename", "offers"),
    [
        ('<a href="x">', "pkg-1.0-py3-none-any.whl", ("1.0", "")),
        ('<a href="x">', "pkg-1.0.tar.gz", ("1.0", "")),
        ('<a href="x">', "pkg-1.0+local.tar.gz", ("1.0+local", "")),
        ('<a href="x">', "Pkg_Name-1.0.zip", None),  # another project's (the page is pkg's)
        (
            '<a href="x" data-requires-python="&gt;=3.9">',
            "pkg-1.0-1-cp39-abi3-win_amd64.whl",
            ("1.0", "&gt;=3.9"),
        ),
        ('<a href="x" data-requires-python=">=3.9">', "pkg-1.0.tar.gz", ("1.0", ">=3.9")),
        ('<a href="x" data-requires-python=&gt;=3.9>', "pkg-1.0.tar.gz", None),  # unread: kept
        ('<a href="x" data-yanked="">', "pkg-1.0-py3-none-any.whl", None),
        ('<a href="x" DATA-YANKED>', "pkg-1.0.tar.gz", None),
        ('<a href="x">', "pkg-1.0-py3.whl", None),  # not a wheel's name
        ('<a href="x">', "pkg__-1.0-py3-none-any.whl", None),  # pip rejects the name
        ('<a href="x">', "pkg-1.0-abc-py3-none-any.whl", None),  # pip rejects the build tag
        ('<a href="x">', "pkg-1.0.tar.bz2", None),  # an sdist pip knows, kept: not shadowed
    ],
)
def test_a_release_is_what_pip_tells_apart(
    opening: str, filename: str, offers: tuple[str, str] | None
) -> None:
    """An sdist is left out of a target's page only where a wheel offers the same release: the
    same version and Requires-Python, written the same way, of the page's project, not yanked
    (pip ranks a yanked file below any other, and checks Requires-Python per file), named as
    pip's packaging reads it (pip skips a wheel whose name it cannot read)."""
    assert _release(opening, filename, "pkg") == offers


def test_a_file_pip_asks_for_under_tilde_f_is_devpis_under_plus_f(tmp_path: Path) -> None:
    """The pages say USER/INDEX/~f/ for devpi's USER/INDEX/+f/ (pip would quote the "+"): each
    request maps back, under devpi's own path (here /pfx/), and nothing else does."""
    origin = "http://devpi.example"
    access = IndexAccess(f"{origin}/pfx/", f"{origin}/pfx/alice/dev", f"{origin}/pfx/alice/dev/+simple/")
    with gateway_to(access, tmp_path) as gateway:
        for asked, devpi_path in [
            ("/~t/pfx/root/pypi/~f/ab/cd/x-1.0.tar.gz", "/pfx/root/pypi/+f/ab/cd/x-1.0.tar.gz"),
            ("/~t/pfx/alice/dev/+f/ab/cd/x-1.0.tar.gz", "/pfx/alice/dev/+f/ab/cd/x-1.0.tar.gz"),  # a build's
            ("/~t/pfx/alice/dev/+simple/x/", "/pfx/alice/dev/+simple/x/"),
            ("/~t/pfx/~f/ab/cd/x", "/pfx/~f/ab/cd/x"),  # not an index's files
            ("/~t/other/a/~f/cd/x", "/other/a/~f/cd/x"),  # not under devpi's path
        ]:
            assert gateway.request(asked) == ("t", devpi_path)
        reported = f"{gateway.url}/~t/pfx/alice/dev/~f/ab/cd/x-1.0%2Bcpu.tar.gz"  # as pip reports it
        assert gateway.devpi_url(reported) == f"{origin}/pfx/alice/dev/+f/ab/cd/x-1.0+cpu.tar.gz"
        # ... and the pages say ~f exactly where a request maps it back
        page_url = f"{origin}/pfx/alice/dev/+simple/x/"
        for href, for_pip in [
            ("../../+f/ab/cd/x-1.0.tar.gz", "../../~f/ab/cd/x-1.0.tar.gz"),
            ("../../../../root/pypi/+f/ab/cd/x-1.0.tar.gz", "../../../../root/pypi/~f/ab/cd/x-1.0.tar.gz"),
            (f"{origin}/pfx/root/pypi/+f/ab/cd/x-1.0.tar.gz", "../../../../root/pypi/~f/ab/cd/x-1.0.tar.gz"),
            (f"{origin}/other/u/i/+f/ab/cd/x-1.0.tar.gz", "../../../../../other/u/i/+f/ab/cd/x-1.0.tar.gz"),
        ]:
            opening, _ = gateway._rewrite_anchor(page_url, "/pfx/alice/dev/+simple/x", f'<a href="{href}">')
            assert f'href="{for_pip}"' in opening, opening


def test_a_release_whose_requires_python_the_target_does_not_meet_is_not_on_its_page(tmp_path: Path) -> None:
    """pip skips each file whose Requires-Python its target's Python does not meet, and a
    release is its version and Requires-Python (as pip tells them apart): an sdist whose own
    Requires-Python is met stays, unless a wheel of its release is there for the target."""
    origin = "http://devpi.example"
    access = IndexAccess(f"{origin}/", f"{origin}/alice/dev", f"{origin}/alice/dev/+simple/")
    links = [
        ("x-2.0-py3-none-any.whl", "&gt;=3.10"), ("x-2.0.tar.gz", "&gt;=3.10"),
        ("x-1.5-py3-none-any.whl", "&gt;=3.10"), ("x-1.5.tar.gz", None),
        ("x-1.0-py3-none-any.whl", "&gt;=3.8"), ("x-1.0.tar.gz", "&gt;=3.8"),
        ("x-0.9.tar.gz", "&gt;= '3.5'"),  # unreadable: pip keeps it
    ]  # fmt: skip
    attribute = ' data-requires-python="{}"'.format
    text = "".join(f'<a href="../../+f/ab/cd/{n}"{attribute(rp) if rp else ""}>{n}</a>' for n, rp in links)
    with gateway_to(access, tmp_path) as gateway:
        path = tmp_path / "page.html"
        with path.open("wb") as out:
            found = gateway._rewrite(f"{origin}/alice/dev/+simple/x/", text, out)
        page = _Page(200, "text/html", path, "", *found)
        tags = frozenset(Target(Python.parse("3.12"), Platform.parse(LINUX)).tags)
        for python, expected in [
            ("3.9.25", ["x-1.5.tar.gz", "x-1.0-py3-none-any.whl", "x-0.9.tar.gz"]),
            ("3.12.12", ["x-2.0-py3-none-any.whl", "x-1.5-py3-none-any.whl", "x-1.5.tar.gz",
                         "x-1.0-py3-none-any.whl", "x-0.9.tar.gz"]),
        ]:  # fmt: skip
            body = page.body_for(Sees(tags, python)).decode()
            assert re.findall(r">([^<>]+)</a>", body) == expected, python


@pytest.mark.parametrize(
    ("requires_python", "python", "met"),
    [
        ("", "3.9.25", True),
        ("&gt;=3.10", "3.9.25", False),
        ("&gt;=3.10", "3.10.19", True),
        (">=3.9,!=3.9.25", "3.9.25", False),
        ("&gt;=3.9.26", "3.9.25", False),
        ("~=3.9", "3.13.9", True),
        ("&lt;3.13", "3.13.9", False),
        (">=3.6.*", "3.9.25", True),  # unreadable (a wildcard with >=): pip keeps the file
        ("&gt;= '3.5'", "3.9.25", True),  # unreadable
    ],
)
def test_requires_python_is_met_as_pip_reads_it(requires_python: str, python: str, met: bool) -> None:
    """A link's Requires-Python, its attribute text as the page has it, against the target's
    ``python_full_version`` (what pip gets as ``--python-version``): an unreadable one is met, as
    pip keeps such a file."""
    assert _allows(requires_python, python) is met


def test_pip_sees_link_hashes_only_when_it_checks_pinned_ones(devpi: DevpiScene, tmp_path: Path) -> None:
    """pip keeps each link's ``#sha256=`` (38 of its 191 MB for a 300-requirement target) and
    needs it only to choose among the files a ``--hash`` pins; the gateway checks every file
    it serves itself."""
    linux = Target(Python.parse("3.12"), Platform.parse(LINUX))
    for checks, workdir in ((False, tmp_path / "plain"), (True, tmp_path / "hashes")):
        with open_gateway(devpi, workdir, pip_checks_hashes=checks) as gateway:
            index_url = gateway.index_url_for("l", linux)
            auth = ("warmup", gateway.netrc().split()[-1])
            page = requests.get(f"{index_url}natpkg/", auth=auth, timeout=60)
            assert page.status_code == 200, page.text
            [href] = re.findall(r'href="([^"]+)"', page.text)
            path, _, fragment = href.partition("#")
            assert path.endswith("/natpkg-1.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
            url = gateway.devpi_url(urljoin(page.url, path))
            sha256 = gateway.announced_sha256(url)
            assert sha256 == hashlib.sha256(requests.get(url, timeout=60).content).hexdigest()
            assert fragment == (f"sha256={sha256}" if checks else "")


def test_pip_gets_core_metadata_without_the_description(devpi: DevpiScene, tmp_path: Path) -> None:
    """pip keeps the core metadata of every candidate it looks at and never reads the
    description (a project's README, often tens of KB): the gateway serves every other field
    as the wheel has it."""
    linux = Target(Python.parse("3.12"), Platform.parse(LINUX))
    with open_gateway(devpi, tmp_path) as gateway:
        index_url = gateway.index_url_for("l", linux)
        auth = ("warmup", gateway.netrc().split()[-1])
        page = requests.get(f"{index_url}pure-a/", auth=auth, timeout=60)
        links = dict(re.findall(r'<a href="([^"#]+)[^>]*>([^<]+)</a>', page.text))
        wheel = next(href for href, name in links.items() if name == "pure_a-2.0-py3-none-any.whl")
        served = requests.get(urljoin(page.url, wheel) + ".metadata", auth=auth, timeout=60)
        assert served.status_code == 200, served.text
        whole = gateway.metadata(gateway.devpi_url(urljoin(page.url, wheel)))
    assert b"\n\npure-a 2.0: a test distribution." in whole  # the wheel's own, with its body
    assert served.text == (
        "Metadata-Version: 2.1\nName: pure-a\nVersion: 2.0\n"
        "License: Copyright (c) the warmup tests\n        \n        All rights reserved.\n"
        "Requires-Dist: pure-b>=1\nDescription-Content-Type: text/plain\n"
    )


@pytest.mark.parametrize(
    ("metadata", "lean"),
    [
        (b"Name: x\nVersion: 1\n\n# x\n\nlong\n", b"Name: x\nVersion: 1\n"),
        (b"Name: x\r\nVersion: 1\r\n\r\nbody\r\n", b"Name: x\r\nVersion: 1\r\n"),
        (  # an old Description field, with its continuation lines; its content type stays
            b"Name: x\nDescription: one\n        two\n        |three\n"
            + b"Description-Content-Type: text/x-rst\nRequires-Dist: y\n",
            b"Name: x\nDescription-Content-Type: text/x-rst\nRequires-Dist: y\n",
        ),
        (b"Name: x\nSummary: a\n  b\n", b"Name: x\nSummary: a\n  b\n"),  # other continuations stay
        (  # a line of blanks continues a field (pythran's License): the fields go on after it
            b"Name: x\nLicense: a\n        \n        b\nRequires-Dist: y\n\nbody\n",
            b"Name: x\nLicense: a\n        \n        b\nRequires-Dist: y\n",
        ),
    ],
)
def test_lean_metadata_keeps_every_field_but_the_description(metadata: bytes, lean: bytes) -> None:
    assert _lean(metadata) == lean
    # as the email parser that reads core metadata sees them: the same fields, and no body
    original, served = (email.parser.BytesParser().parsebytes(data) for data in (metadata, lean))
    assert served.items() == [item for item in original.items() if item[0].lower() != "description"]
    assert not served.get_payload()


@pytest.mark.parametrize(
    ("opening", "announced"),
    [
        ('<a href="x.tar.gz">', '<a href="x.tar.gz" data-core-metadata="true">'),
        ('<a href="x.whl" data-core-metadata="true">', '<a href="x.whl" data-core-metadata="true">'),
        (  # devpi's hash of its own metadata would not match the shorter file pip gets
            '<a href="x.whl" data-dist-info-metadata="sha256=ab" data-core-metadata=\'sha256=ab\'>',
            '<a href="x.whl" data-dist-info-metadata="true" data-core-metadata="true">',
        ),
        ('<a href="x.whl" data-core-metadata=sha256=ab>', '<a href="x.whl" data-core-metadata="true">'),
    ],
)
def test_every_link_announces_metadata_without_a_hash(opening: str, announced: str) -> None:
    assert _announce_metadata(opening) == announced
