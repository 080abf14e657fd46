"""Build real (tiny) distributions on disk: wheels, sdists and a PEP 517 backend."""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import _distwriter
from ._distwriter import dist_name, metadata_text, module_name, normalize, write_sdist

__all__ = [
    "BACKEND_HELPER",
    "BACKEND_NAME",
    "MANYLINUX_2_28",
    "MANYLINUX_2014",
    "MUSLLINUX_1_1",
    "NATPKG_TAGS",
    "Dists",
    "dist_name",
    "hook_log",
    "installed_as_wheel",
    "make_backend_wheel",
    "make_legacy_sdist",
    "make_sdist",
    "make_setup_py_sdist",
    "make_wheel",
    "module_name",
    "normalize",
    "standard_dists",
]

BACKEND_NAME = "warmup-backend"
BACKEND_HELPER = "warmup-backend-helper"
BACKEND_CONFIG = "warmup-backend.json"
_HERE = Path(__file__).parent


def _init_py(version: str, tag: str) -> bytes:
    return f'__version__ = "{version}"\nWHEEL_TAG = "{tag}"\n'.encode()


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    tag: str = "py3-none-any",
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write an installable wheel of one module ``{module}/__init__.py``.

    The module records ``__version__`` and ``WHEEL_TAG``; ``files`` replaces
    the default module contents (archive path -> bytes).
    """
    if files is None:
        files = {f"{module_name(name)}/__init__.py": _init_py(version, tag)}
    return _distwriter.write_wheel(
        dest,
        name,
        version,
        files,
        tag=tag,
        requires_dist=requires_dist,
        requires_python=requires_python,
    )


def make_backend_wheel(
    dest: Path, version: str = "1.0", requires_dist: Sequence[str] = (BACKEND_HELPER,)
) -> Path:
    """Wheel of the test-owned PEP 517 backend ``warmup_backend``."""
    package = module_name(BACKEND_NAME)
    files = {
        f"{package}/__init__.py": (_HERE / "_warmup_backend.py").read_bytes(),
        f"{package}/_distwriter.py": (_HERE / "_distwriter.py").read_bytes(),
    }
    return make_wheel(dest, BACKEND_NAME, version, requires_dist=requires_dist, files=files)


def make_sdist(
    dest: Path,
    name: str,
    version: str,
    *,
    requires_dist: Sequence[str] = (),
    requires_python: str | None = None,
    backend: str = "warmup_backend",
    static: bool = False,
    hook_log: Path | None = None,
    build_requires: Sequence[str] = (),
) -> Path:
    """Write ``{dist_name}-{version}.tar.gz`` built by ``backend`` (PEP 517).

    With ``static``, PKG-INFO is core metadata 2.2 without any ``Dynamic`` field:
    PEP 643 static metadata, so its ``Requires-Dist`` is what every build produces.
    """
    requires = ", ".join(json.dumps(r) for r in [normalize(backend), *build_requires])
    pyproject = f'[build-system]\nrequires = [{requires}]\nbuild-backend = "{backend}"\n'
    config: dict[str, object] = {"name": name, "version": version, "dependencies": list(requires_dist)}
    if hook_log is not None:
        config["hook_log"] = str(hook_log)
    if requires_python:
        config["requires-python"] = requires_python
    pkg_info = metadata_text(name, version, requires_dist, requires_python)
    if static:
        pkg_info = pkg_info.replace("Metadata-Version: 2.1\n", "Metadata-Version: 2.2\n", 1)
    files = {
        "pyproject.toml": pyproject.encode(),
        BACKEND_CONFIG: (json.dumps(config, indent=2) + "\n").encode(),
        "PKG-INFO": pkg_info.encode(),
        f"src/{module_name(name)}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    return write_sdist(dest, name, version, files)


def make_legacy_sdist(dest: Path, name: str, version: str, requires_txt: str) -> Path:
    """A setup.py sdist as old setuptools made them: no pyproject.toml, PKG-INFO 1.0 without
    Requires-Dist, the dependencies only in ``<name>.egg-info/requires.txt``."""
    pkg_info = f"Metadata-Version: 1.0\nName: {name}\nVersion: {version}\n\n"
    egg_info = f"{module_name(name)}.egg-info"
    files = {
        "setup.py": f"from setuptools import setup\nsetup(name={name!r}, version={version!r})\n".encode(),
        "PKG-INFO": pkg_info.encode(),
        f"{egg_info}/PKG-INFO": pkg_info.encode(),
        f"{egg_info}/requires.txt": requires_txt.encode(),
    }
    return write_sdist(dest, name, version, files)


def installed_as_wheel(dest: Path, name: str) -> Path:
    """A wheel of the distribution ``name`` installed here (its package files, metadata and
    entry points): a real build tool for a hermetic upstream, with no download."""
    dist = importlib.metadata.distribution(name)
    files = {}
    for file in dist.files or ():
        path = str(file)
        if path.startswith("..") or "__pycache__" in path or ".dist-info/" in path:
            continue
        files[path] = Path(str(file.locate())).read_bytes()
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files[f"{_distwriter.dist_info_name(name, dist.version)}/entry_points.txt"] = entry_points.encode()
    return _distwriter.write_wheel(
        dest, name, dist.version, files, requires_python=dist.metadata["Requires-Python"]
    )


def make_setup_py_sdist(dest: Path, name: str, version: str, install_requires: Sequence[str]) -> Path:
    """A real setup.py sdist as old setuptools made them (no pyproject.toml, PKG-INFO 1.0, the
    dependencies in egg-info requires.txt), which setuptools builds."""
    pkg_info = f"Metadata-Version: 1.0\nName: {name}\nVersion: {version}\n\n"
    egg_info = f"{module_name(name)}.egg-info"
    setup = (
        "from setuptools import setup\n"
        f"setup(name={name!r}, version={version!r}, packages=[{module_name(name)!r}],"
        f" install_requires={list(install_requires)!r})\n"
    )
    files = {
        "setup.py": setup.encode(),
        "PKG-INFO": pkg_info.encode(),
        f"{egg_info}/PKG-INFO": pkg_info.encode(),
        f"{egg_info}/requires.txt": "".join(f"{r}\n" for r in install_requires).encode(),
        f"{module_name(name)}/__init__.py": f'__version__ = "{version}"\n'.encode(),
    }
    return write_sdist(dest, name, version, files)


def hook_log(dists: Dists) -> list[str]:
    """Every build backend hook that ran on an sdist of ``standard_dists`` so far."""
    path = dists.path / HOOK_LOG
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


HOOK_LOG = "backend-hooks.log"

NATPKG_TAGS = (
    "cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64",
    "cp39-abi3-win_amd64",
    "cp39-abi3-macosx_11_0_arm64",
    "cp39-abi3-musllinux_1_1_x86_64",
)

# Release ladders of compiled packages (no sdists): which release a Linux target gets
# depends on how old a glibc it must serve.
MANYLINUX_2_28 = "cp39-abi3-manylinux_2_28_x86_64"
MANYLINUX_2014 = "cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64"
MUSLLINUX_1_1 = "cp39-abi3-musllinux_1_1_x86_64"


@dataclass(frozen=True)
class Dists:
    """A directory of distribution files."""

    path: Path
    files: list[Path]

    @property
    def filenames(self) -> list[str]:
        return [f.name for f in self.files]

    def __getitem__(self, filename: str) -> Path:
        """The file called ``filename`` (KeyError if there is none)."""
        for f in self.files:
            if f.name == filename:
                return f
        raise KeyError(filename)


def standard_dists(dest: Path) -> Dists:
    """Build the standard test distributions into ``dest``.

    ``pure-a`` 1.0/2.0 (2.0 needs ``pure-b>=1``), ``pure-b`` 1.0, ``natpkg`` 1.0
    (platform wheels only, see ``NATPKG_TAGS``), ``needs-win`` -> ``winonly-dep``
    on win32, ``needs-old-py`` -> ``old-py-dep`` below 3.11, ``sdist-only`` 1.0
    (sdist needing ``pure-b``, built by ``warmup-backend`` + helper), and
    ``py313plus`` 1.0 (Requires-Python >=3.13).

    Per-target cases: ``ladder-pkg`` 2.0 (``manylinux_2_28`` wheel only) / 1.0
    (``manylinux2014`` only) and the reverse ``ladder-rev`` 2.0 (``manylinux2014``) /
    1.0 (``manylinux_2_28``); ``musl-only`` 1.0 (a ``musllinux_1_1_x86_64`` wheel only);
    ``needs-arm`` -> ``arm-dep`` when ``platform_machine == "aarch64"``; ``needs-sdist``
    (a wheel) -> ``sdist-only``; ``static-sdist`` 1.0 (sdist with static PEP 643
    metadata: Metadata-Version 2.2, ``Requires-Dist: pure-b``, no ``Dynamic``).

    Wheels first and no builds: ``newer-sdist`` 2.0 (sdist) / 1.0 (pure wheel);
    ``wheel-sibling`` 1.0 (sdist with dynamic metadata and a ``win_amd64`` wheel);
    ``legacy-sdist`` 1.0 (setup.py, egg-info ``requires.txt``: ``pure-b``, ``winonly-dep`` on
    win32) and stand-in ``setuptools``/``wheel`` wheels. The test backend appends each hook it
    runs for these sdists to ``HOOK_LOG`` (see ``hook_log``).
    """
    files = [
        make_wheel(dest, "pure-a", "1.0"),
        make_wheel(dest, "pure-a", "2.0", requires_dist=["pure-b>=1"]),
        make_wheel(dest, "pure-b", "1.0"),
        *(make_wheel(dest, "natpkg", "1.0", tag=tag) for tag in NATPKG_TAGS),
        make_wheel(dest, "winonly-dep", "1.0"),
        make_wheel(dest, "needs-win", "1.0", requires_dist=['winonly-dep; sys_platform == "win32"']),
        make_wheel(dest, "old-py-dep", "1.0"),
        make_wheel(dest, "needs-old-py", "1.0", requires_dist=['old-py-dep; python_version < "3.11"']),
        make_sdist(dest, "sdist-only", "1.0", requires_dist=["pure-b"], hook_log=dest / HOOK_LOG),
        make_backend_wheel(dest),
        make_wheel(dest, BACKEND_HELPER, "1.0"),
        make_wheel(dest, "py313plus", "1.0", requires_python=">=3.13"),
        make_wheel(dest, "ladder-pkg", "1.0", tag=MANYLINUX_2014),
        make_wheel(dest, "ladder-pkg", "2.0", tag=MANYLINUX_2_28),
        make_sdist(dest, "ladder-pkg", "2.0", hook_log=dest / HOOK_LOG),  # what a compiler would build
        make_wheel(dest, "ladder-rev", "1.0", tag=MANYLINUX_2_28),
        make_wheel(dest, "ladder-rev", "2.0", tag=MANYLINUX_2014),
        make_wheel(dest, "musl-only", "1.0", tag=MUSLLINUX_1_1),
        make_wheel(dest, "arm-dep", "1.0"),
        make_wheel(dest, "needs-arm", "1.0", requires_dist=['arm-dep; platform_machine == "aarch64"']),
        make_wheel(dest, "needs-sdist", "1.0", requires_dist=["sdist-only"]),
        make_sdist(
            dest, "static-sdist", "1.0", requires_dist=["pure-b"], static=True, hook_log=dest / HOOK_LOG
        ),
        # wheels first: 2.0 has only an sdist, 1.0 a wheel every target takes
        make_wheel(dest, "newer-sdist", "1.0"),
        make_sdist(dest, "newer-sdist", "2.0", requires_dist=["pure-b"], hook_log=dest / HOOK_LOG),
        # dynamic metadata in the sdist; the same release's Windows wheel tells its dependencies
        make_sdist(dest, "wheel-sibling", "1.0", requires_dist=["pure-b"], hook_log=dest / HOOK_LOG),
        make_wheel(dest, "wheel-sibling", "1.0", tag="cp39-abi3-win_amd64", requires_dist=["pure-b"]),
        make_legacy_sdist(dest, "legacy-sdist", "1.0", 'pure-b\n\n[:sys_platform == "win32"]\nwinonly-dep\n'),
        # only a build on this (Linux) machine installs linux-only-helper: devpi must not keep it
        make_sdist(
            dest,
            "host-build",
            "1.0",
            hook_log=dest / HOOK_LOG,
            build_requires=['linux-only-helper; sys_platform == "linux"'],
        ),
        make_wheel(dest, "linux-only-helper", "1.0"),
        make_wheel(dest, "setuptools", "80.0"),  # stand-ins: what builds legacy-sdist (never installed)
        make_wheel(dest, "wheel", "0.45.1"),
    ]
    return Dists(path=dest, files=files)
