"""Hermetic fixtures: local dists, a local upstream index, a real devpi-server."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Callable

import pytest

from tests.support.devpi import DevpiClient, DevpiScene, DevpiServer, free_port, setup_scene
from tests.support.dists import Dists, standard_dists
from tests.support.upstream import Upstream
from tests.support.venvs import PYENV_VERSIONS, create_venv

# pythonX.Y resolve through pyenv shims; make every version visible.
os.environ.setdefault("PYENV_VERSION", PYENV_VERSIONS)


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


@pytest.fixture
def devpi(tmp_path: Path, upstream: Upstream) -> Iterator[DevpiScene]:
    """Fresh devpi-server: alice/upstream mirrors ``upstream``, alice/dev in use."""
    server = DevpiServer(tmp_path / "devpi-server", free_port())
    server.init()
    try:
        yield setup_scene(server, DevpiClient(tmp_path / "devpi-client", server), upstream.url)
    finally:
        server.stop()


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
