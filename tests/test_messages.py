"""A failed resolution is reported as its cause, naming the package, not as pip's scraps.

Real pip runs (the host pip, against a folder of test dists) produce the output that
``pip_failure`` reads.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devpi_client_warmup.index.sdist import toolchains
from devpi_client_warmup.resolve.pip import pip_failure
from tests.support._distwriter import write_sdist
from tests.support.devpi import clean_env
from tests.support.dists import make_wheel

_FAILING_BACKEND = b"""\
def get_requires_for_build_wheel(config_settings=None):
    return []

def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    print("checking for a Fortran compiler")
    print("error: no Fortran compiler found")
    raise SystemExit(1)
"""


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("links")
    make_wheel(folder, "wants-b2", "1.0", requires_dist=["bee==2"])
    make_wheel(folder, "wants-b1", "1.0", requires_dist=["bee==1"])
    make_wheel(folder, "bee", "1.0")
    pyproject = b'[build-system]\nrequires = []\nbuild-backend = "failing"\nbackend-path = ["."]\n'
    pkg_info = b"Metadata-Version: 2.1\nName: needs-fortran\nVersion: 1.0\n\n"
    files = {"pyproject.toml": pyproject, "failing.py": _FAILING_BACKEND, "PKG-INFO": pkg_info}
    write_sdist(folder, "needs-fortran", "1.0", files)
    return folder


def pip_output(links: Path, *requirements: str) -> str:
    argv = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-index",
            "--find-links", str(links), *requirements]  # fmt: skip
    proc = subprocess.run(
        argv, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    assert proc.returncode != 0, proc.stdout
    return proc.stdout


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        (["wants-b2"], "no file of bee==2 (from wants-b2) fits this target; the index has 1.0"),
        (["wants-b1", "wants-b2"], "conflicting requirements: wants-b1 1.0 depends on bee==1; wants-b2 1.0 depends on bee==2"),
        (["needs-fortran"],
         "building the metadata of needs-fortran on this machine failed: error: no Fortran compiler found"),
    ],
)  # fmt: skip
def test_pip_failures_become_one_cause_naming_the_package(
    links: Path, requirements: list[str], message: str
) -> None:
    output = pip_output(links, *requirements)
    assert pip_failure(output) == message, output


def test_long_causes_are_cut_at_a_word() -> None:
    long = "ERROR: " + " ".join(["word"] * 200)
    cause = pip_failure(long)
    assert len(cause) <= 404 and cause.endswith(" ...") and "wor ..." not in cause


def test_a_compiled_sdist_names_the_toolchain_its_build_requirements_need() -> None:
    assert toolchains(["maturin>=1,<2"]) == ["Rust (cargo)"]
    assert toolchains(["setuptools", "Cython>=3", "numpy; python_version >= '3.9'"]) == [
        "a C compiler", "a C compiler (NumPy headers)",
    ]  # fmt: skip
    assert toolchains(["setuptools>=40.8.0", "wheel"]) == []  # nothing tells: the generic warning
