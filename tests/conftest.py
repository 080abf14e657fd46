"""Hermetic fixtures: local dists, a local upstream index, a real devpi-server."""

from __future__ import annotations

import os
import secrets
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.support.authproxy import AuthProxy, LockedScene, setup_locked_scene
from tests.support.devpi import (
    DevpiScene,
    DevpiServer,
    SharedAccount,
    free_port,
    remove_scene,
    remove_user,
    setup_shared_scene,
    wait_for,
)
from tests.support.dists import Dists, standard_dists
from tests.support.upstream import Upstream
from tests.support.venvs import PYENV_VERSIONS, create_venv, unpack_bundled_pips_into

# pythonX.Y resolve through pyenv shims; make every version visible.
os.environ.setdefault("PYENV_VERSION", PYENV_VERSIONS)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than CPUs, since a test spends much of its time waiting for
    its subprocesses (devpi-server, devpi, pip) and servers."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return cpus + 1


#: modules whose tests share a module-scoped fixture: each runs whole on one worker
WHOLE_MODULES = ("tests/test_targets.py", "tests/test_messages.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist load`` hands out tests one by one, but ``WHOLE_MODULES`` whole and first: by
    whole modules (loadscope) one worker still ran the slowest module for half a minute after
    the others had finished. (``--dist loadgroup`` cannot do it under pytest 9: it renames
    node ids through an attribute pytest 9 no longer reads, pytest-xdist#1386.)"""
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        """A scope per test, one per module of ``WHOLE_MODULES``; the scopes with the most tests
        first (xdist's ``--loadscope-reorder``, on by default)."""

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in WHOLE_MODULES else nodeid

    return Scheduling(config, log)


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts with an empty devpi-warmup cache (no state from other tests or runs)."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture(scope="session")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """The standard test distributions (see ``standard_dists``), built once."""
    return standard_dists(tmp_path_factory.mktemp("dists"))


@pytest.fixture
def upstream(tmp_path: Path, dists: Dists) -> Iterator[Upstream]:
    """A running simple index on 127.0.0.1 holding every file of ``dists``."""
    index = Upstream(tmp_path / "upstream")
    for path in dists.files:
        index.add(path)
    with index:
        yield index


@pytest.fixture(scope="session")
def shared_account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedAccount]:
    """One devpi-server for the tests of a session that need no server of their own, and alice
    on it, logged in (see ``SharedAccount``)."""
    folder = tmp_path_factory.mktemp("shared-devpi")
    server = DevpiServer(folder / "devpi-server", free_port())
    server.init()
    server.start()
    try:
        yield SharedAccount.create(server, folder / "devpi-client")
    finally:
        server.stop()


@pytest.fixture
def devpi(tmp_path: Path, upstream: Upstream, shared_account: SharedAccount) -> Iterator[DevpiScene]:
    """The shared devpi-server, online: a fresh mirror index of alice's (``mirror_index``, a
    name of its own per test) mirrors ``upstream``, a fresh alice/dev inherits it and is in
    use, alice is logged in (her indexes are removed afterwards; a test may stop the server or
    restart it offline, and it is started online again)."""
    scene = setup_shared_scene(shared_account, tmp_path / "devpi-client", upstream.url)
    _wait_for_project_list(upstream)
    try:
        yield scene
    finally:
        remove_scene(scene, shared_account)


def _wait_for_project_list(upstream: Upstream) -> None:
    """A new mirror reads its upstream's project list in the background: let it be done."""
    wait_for(lambda: "/simple/" in upstream.paths(), 30, "devpi never read the upstream's project list")


# the HTTP Basic credentials of the proxy in ``gated_devpi``: unique per test process, so that
# a scan of every process for leaked secrets cannot match another worker's
GATE_AUTH = ("gate", f"gate-pw-{secrets.token_hex(4)}")


@contextmanager
def _locked_scene(
    tmp_path: Path, upstream: Upstream, account: SharedAccount, basic_auth: tuple[str, str] | None
) -> Iterator[LockedScene]:
    with AuthProxy(account.server.url, lockdown=True, basic_auth=basic_auth) as proxy:
        scene = setup_locked_scene(account, tmp_path / "devpi-client", upstream.url, proxy)
        _wait_for_project_list(upstream)
        try:
            yield scene
        finally:
            remove_user(scene, account)


@pytest.fixture
def locked_devpi(tmp_path: Path, upstream: Upstream, shared_account: SharedAccount) -> Iterator[LockedScene]:
    """The shared devpi-server (devpi-lockdown is installed) reached only through an
    ``AuthProxy`` (nginx + auth_request): a user of the test's own, with a password of its
    own, whose USER/upstream mirrors ``upstream``; logged in, USER/dev in use (the user and
    her indexes are removed afterwards; the server is started online again)."""
    with _locked_scene(tmp_path, upstream, shared_account, None) as scene:
        yield scene


@pytest.fixture
def gated_devpi(tmp_path: Path, upstream: Upstream, shared_account: SharedAccount) -> Iterator[LockedScene]:
    """As ``locked_devpi``, and the proxy also demands HTTP Basic ``GATE_AUTH`` (nginx
    auth_basic); the client did ``devpi use http://gate:gate-pw-7x@PROXY/``."""
    with _locked_scene(tmp_path, upstream, shared_account, GATE_AUTH) as scene:
        yield scene


@pytest.fixture(scope="session", autouse=True)
def bundled_pips(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The pip wheels that ensurepip bundles (what drives pip in venvs of Pythons the host pip no
    longer supports) are unpacked once per test process, here."""
    unpack_bundled_pips_into(tmp_path_factory.mktemp("bundled-pips"))


@pytest.fixture
def make_venv(tmp_path: Path) -> Callable[[str], Path]:
    """Factory: ``make_venv("3.9")`` -> path of a new venv without pip."""
    counter = iter(range(1000))

    def make(python_version: str) -> Path:
        return create_venv(tmp_path / f"venv-{python_version}-{next(counter)}", python_version)

    return make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the devpi-server log to failing tests that use ``devpi``."""
    report = yield
    scene = getattr(item, "funcargs", {}).get("devpi")
    if report.failed and isinstance(scene, DevpiScene):
        report.sections.append(("devpi-server log (tail)", scene.server.log_tail(60)))
    return report


class _LockedSceneLogs:
    """Attach the devpi-server log and the proxy's requests to failing tests of locked scenes."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        scenes = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, LockedScene)]
        for scene in scenes if report.failed else []:
            report.sections.append(("devpi-server log (tail)", scene.server.log_tail(60)))
            if scene.proxy is not None:
                lines = [f"{r.method} {r.path} {r.status} auth={r.authorization} devpi-auth={r.devpi_auth}"
                         for r in scene.proxy.records()[-60:]]  # fmt: skip
                report.sections.append(("auth proxy requests (tail)", "\n".join(lines)))
        return report


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_LockedSceneLogs(), "locked-scene-logs")
