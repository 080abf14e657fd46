"""``devpi warmup`` warms exactly what each target of a matrix installs, and nothing else.

One real devpi-server is warmed for a matrix of CPythons x platforms, most of which this
Linux x86_64 machine is not; then it restarts with ``--offline-mode``. The expected files
of every target are written out below by hand (not computed by the code under test) and
compared with the JSON report, with what the offline devpi lists, with what pip resolves
against the offline index for that target's tags, and, for the targets that run here,
with a real install into venvs.

Why several ``devpi warmup`` runs: the matrix is a product and a requirement applies to
every cell. ``ladder-pkg``/``ladder-rev`` exist for glibc x86_64 only and ``musl-only`` for
musl only, and no environment marker tells glibc from musl, so each family gets its own run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from packaging import tags
from packaging.utils import parse_sdist_filename, parse_wheel_filename

from tests.support.devpi import (
    DevpiClient,
    DevpiScene,
    DevpiServer,
    clean_env,
    describe,
    free_port,
    setup_scene,
)
from tests.support.dists import BACKEND_HELPER, BACKEND_NAME, Dists
from tests.support.upstream import Upstream
from tests.support.venvs import pip_install, venv_python_ok

LINUX = "manylinux_2_28_x86_64"  # glibc >= 2.28 (this machine is one)
LINUX2014 = "manylinux2014_x86_64"  # glibc >= 2.17
MUSL = "musllinux_1_2_x86_64"
ARM = "manylinux_2_28_aarch64"
WIN = "win_amd64"
MAC = "macosx_11_0_arm64"
PLATFORMS = (LINUX, LINUX2014, MUSL, ARM, WIN, MAC)
PYTHONS = ("3.9", "3.13")

# -- the files, by hand -------------------------------------------------------------------

PURE_A_2 = "pure_a-2.0-py3-none-any.whl"
PURE_B = "pure_b-1.0-py3-none-any.whl"
NEEDS_WIN = "needs_win-1.0-py3-none-any.whl"
WINONLY_DEP = "winonly_dep-1.0-py3-none-any.whl"
NEEDS_OLD_PY = "needs_old_py-1.0-py3-none-any.whl"
OLD_PY_DEP = "old_py_dep-1.0-py3-none-any.whl"
NEEDS_ARM = "needs_arm-1.0-py3-none-any.whl"
ARM_DEP = "arm_dep-1.0-py3-none-any.whl"
NEEDS_SDIST = "needs_sdist-1.0-py3-none-any.whl"
SDIST_ONLY = "sdist_only-1.0.tar.gz"
STATIC_SDIST = "static_sdist-1.0.tar.gz"
BACKEND = "warmup_backend-1.0-py3-none-any.whl"
HELPER = "warmup_backend_helper-1.0-py3-none-any.whl"
PY313PLUS = "py313plus-1.0-py3-none-any.whl"
M2014 = "cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64"
LADDER_PKG_1 = f"ladder_pkg-1.0-{M2014}.whl"
LADDER_PKG_2 = "ladder_pkg-2.0-cp39-abi3-manylinux_2_28_x86_64.whl"
LADDER_REV_1 = "ladder_rev-1.0-cp39-abi3-manylinux_2_28_x86_64.whl"
LADDER_REV_2 = f"ladder_rev-2.0-{M2014}.whl"
MUSL_ONLY = "musl_only-1.0-cp39-abi3-musllinux_1_1_x86_64.whl"
NATPKG = {
    LINUX: f"natpkg-1.0-{M2014}.whl",
    LINUX2014: f"natpkg-1.0-{M2014}.whl",
    MUSL: "natpkg-1.0-cp39-abi3-musllinux_1_1_x86_64.whl",
    WIN: "natpkg-1.0-cp39-abi3-win_amd64.whl",
    MAC: "natpkg-1.0-cp39-abi3-macosx_11_0_arm64.whl",
    # ARM: none, and natpkg has no sdist
}

# Run 1: every platform. Pure wheels with markers, a wheel needing an sdist, a static sdist.
MATRIX_REQUIREMENTS = """\
pure-a            # 2.0, pulls pure-b
needs-win         # winonly-dep on Windows only
needs-old-py      # old-py-dep below 3.11 only
needs-arm         # arm-dep where platform_machine == "aarch64" (not on arm64 Macs)
needs-sdist       # a wheel whose dependency sdist-only ships only an sdist
static-sdist      # an sdist with static PEP 643 metadata
"""
_EVERY_MATRIX_TARGET = {
    PURE_A_2: "install", PURE_B: "install", NEEDS_WIN: "install", NEEDS_OLD_PY: "install",
    NEEDS_ARM: "install", NEEDS_SDIST: "install", SDIST_ONLY: "install", STATIC_SDIST: "install",
    BACKEND: "build", HELPER: "build",
}  # fmt: skip
#: what differs between the targets: marker-selected dependencies, written out per target
_MATRIX_EXTRAS = {
    f"3.9-{LINUX}": {OLD_PY_DEP},
    f"3.9-{LINUX2014}": {OLD_PY_DEP},
    f"3.9-{MUSL}": {OLD_PY_DEP},
    f"3.9-{ARM}": {OLD_PY_DEP, ARM_DEP},
    f"3.9-{WIN}": {OLD_PY_DEP, WINONLY_DEP},
    f"3.9-{MAC}": {OLD_PY_DEP},
    f"3.13-{LINUX}": set(),
    f"3.13-{LINUX2014}": set(),
    f"3.13-{MUSL}": set(),
    f"3.13-{ARM}": {ARM_DEP},
    f"3.13-{WIN}": {WINONLY_DEP},
    f"3.13-{MAC}": set(),
}
EXPECTED_MATRIX = {
    name: {**_EVERY_MATRIX_TARGET, **dict.fromkeys(extras, "install")}
    for name, extras in _MATRIX_EXTRAS.items()
}

# Run 2: glibc x86_64. Which release a target gets depends on the oldest glibc it serves.
LADDER_REQUIREMENTS = ("ladder-pkg", "ladder-rev")
EXPECTED_LADDER = {
    f"3.9-{LINUX}": {LADDER_PKG_2: "install", LADDER_REV_2: "install"},
    f"3.9-{LINUX2014}": {LADDER_PKG_1: "install", LADDER_REV_2: "install"},
    f"3.13-{LINUX}": {LADDER_PKG_2: "install", LADDER_REV_2: "install"},
    f"3.13-{LINUX2014}": {LADDER_PKG_1: "install", LADDER_REV_2: "install"},
}

# Run 3: musl. musllinux_1_2 serves the musllinux_1_1 wheel.
EXPECTED_MUSL = {f"3.9-{MUSL}": {MUSL_ONLY: "install"}, f"3.13-{MUSL}": {MUSL_ONLY: "install"}}

# Run 4: a compiled package with no wheel (and no sdist) for aarch64.
EXPECTED_NATPKG = {
    f"3.9-{platform}": (
        {PURE_A_2: "install", PURE_B: "install", NATPKG[platform]: "install"} if platform != ARM else {}
    )
    for platform in PLATFORMS
}

#: added to run 1 for the second ``--check``: not warmed, needed by the 3.13 targets only
NOT_WARMED = 'py313plus; python_version >= "3.13"'
CHECK_PLATFORMS = (LINUX, WIN)  # the second --check runs for fewer targets (time)
#: a second mirror of the same upstream and an index on it: devpi stores nothing for them
FRESH_MIRROR, FRESH_INDEX = "alice/upstream2", "alice/dev2"
FRESH_CHECK = ("pure-a", "needs-win", "--python", "3.12", "--platform", WIN)
FRESH_MISSING = [PURE_A_2, NEEDS_WIN, PURE_B, WINONLY_DEP]


def pip_platforms(platform: str) -> list[str]:
    """Every platform tag pip *on that machine* accepts, written independently of the code
    under test (PEP 600 / PEP 656 and packaging's mac_platforms)."""
    if platform.startswith(("manylinux", "musllinux")):
        arch = "aarch64" if platform.endswith("aarch64") else "x86_64"
        if platform.startswith("musllinux"):
            return [f"musllinux_1_{minor}_{arch}" for minor in (2, 1, 0)] + [f"linux_{arch}"]
        newest = 17 if platform == LINUX2014 else 28
        oldest = 5 if arch == "x86_64" else 17
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        ladder = []
        for minor in range(newest, oldest - 1, -1):
            ladder.append(f"manylinux_2_{minor}_{arch}")
            if minor in legacy:
                ladder.append(f"{legacy[minor]}_{arch}")
        return ladder + [f"linux_{arch}"]
    if platform.startswith("macosx"):
        return list(tags.mac_platforms((11, 0), "arm64"))
    return [platform]


# -- the scenario, run once for the module ------------------------------------------------


@dataclass
class Run:
    proc: subprocess.CompletedProcess[str]
    report: dict[str, Any]
    file_gets: dict[str, int] = field(default_factory=dict)  # upstream GETs of /files/ during the run

    @property
    def output(self) -> str:
        return self.proc.stdout + self.proc.stderr

    def target_files(self) -> dict[str, dict[str, str]]:
        """Per target: filename -> role, as the report lists them."""
        return {t["name"]: {f["name"]: f["role"] for f in t["files"]} for t in self.report["targets"]}

    def line(self, target: str) -> str:
        """The output line of ``target``."""
        lines = [line for line in self.proc.stdout.splitlines() if line.startswith(f"{target}: ")]
        assert len(lines) == 1, f"no single line for {target}\n{describe(self.proc)}"
        return lines[0]


@dataclass
class Scenario:
    scene: DevpiScene
    upstream: Upstream
    requirements: Path
    matrix: Run
    ladder: Run
    musl: Run
    natpkg: Run
    check_ok: Run
    check_missing: Run
    fresh_warm_cache: Run
    fresh_cold_cache: Run
    stored: dict[str, set[str]]  # project -> files the offline devpi lists
    fresh_stored: dict[str, set[str]]  # the same for FRESH_INDEX


def _matrix_args(
    requirements: Path, *, pythons: tuple[str, ...] = PYTHONS, platforms: tuple[str, ...] = PLATFORMS
) -> list[str]:
    return ["-r", str(requirements), "--python", ",".join(pythons), "--platform", ",".join(platforms)]


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory, dists: Dists) -> Iterator[Scenario]:
    tmp = tmp_path_factory.mktemp("targets")
    # a metadata cache of this module's own: what is cached from earlier runs must not matter
    env = clean_env(XDG_CACHE_HOME=str(tmp / "cache"))
    with Upstream(tmp / "upstream") as upstream:
        for path in dists.files:
            upstream.add(path)
        server = DevpiServer(tmp / "devpi-server", free_port())
        server.init()
        try:
            scene = setup_scene(server, DevpiClient(tmp / "devpi-client", server), upstream.url)

            def warmup(name: str, *args: str, env: dict[str, str] = env) -> Run:
                report = tmp / f"{name}.json"
                upstream.clear_log()
                started = time.monotonic()
                proc = scene.warmup(*args, "--report", str(report), env=env)
                print(f"devpi warmup {name}: {time.monotonic() - started:.1f} s")
                assert report.is_file(), describe(proc)
                gets = Counter(p.rsplit("/", 1)[1] for p in upstream.paths() if p.startswith("/files/"))
                return Run(proc, json.loads(report.read_text()), dict(gets))

            requirements = tmp / "requirements.txt"
            requirements.write_text(MATRIX_REQUIREMENTS)
            matrix = warmup("matrix", *_matrix_args(requirements))
            ladder = warmup(
                "ladder",
                *LADDER_REQUIREMENTS,
                "--python",
                ",".join(PYTHONS),
                "--platform",
                f"{LINUX},{LINUX2014}",
            )
            musl = warmup("musl", "musl-only", "--python", ",".join(PYTHONS), "--platform", MUSL)
            natpkg = warmup(
                "natpkg", "natpkg", "pure-a", "--python", "3.9", "--platform", ",".join(PLATFORMS)
            )

            check_ok = warmup("check-ok", *_matrix_args(requirements), "--check")
            more = tmp / "more-requirements.txt"
            more.write_text(MATRIX_REQUIREMENTS + NOT_WARMED + "\n")
            check_missing = warmup("check-missing", *_matrix_args(more, platforms=CHECK_PLATFORMS), "--check")

            # --check on an index that stores nothing yet: once with the metadata this module
            # cached, once as on a machine that never ran warmup (an empty metadata cache)
            scene.client.create_index(
                FRESH_MIRROR, "type=mirror", f"mirror_url={upstream.url}", "mirror_cache_expiry=0"
            )
            scene.client.create_index(FRESH_INDEX, f"bases={FRESH_MIRROR}", "volatile=True")
            fresh_args = ("--index", FRESH_INDEX, *FRESH_CHECK, "--check")
            fresh_warm_cache = warmup("fresh-warm-cache", *fresh_args)
            fresh_cold_cache = warmup(
                "fresh-cold-cache", *fresh_args, env=clean_env(XDG_CACHE_HOME=str(tmp / "cold"))
            )

            server.restart(offline=True)
            stored = {project: set(scene.links(project)) for project in upstream.projects()}
            fresh_stored = {
                project: set(scene.links(project, index=FRESH_INDEX)) for project in upstream.projects()
            }
            yield Scenario(
                scene, upstream, requirements, matrix, ladder, musl, natpkg, check_ok, check_missing,
                fresh_warm_cache, fresh_cold_cache, stored, fresh_stored,
            )  # fmt: skip
        finally:
            server.stop()


# -- 1. what each target gets ---------------------------------------------------------------


def test_every_target_is_ok_and_its_report_lists_exactly_its_files(scenario: Scenario) -> None:
    for run, expected in (
        (scenario.matrix, EXPECTED_MATRIX),
        (scenario.ladder, EXPECTED_LADDER),
        (scenario.musl, EXPECTED_MUSL),
    ):
        assert run.proc.returncode == 0, describe(run.proc)
        assert "Traceback" not in run.output, run.output
        for target in expected:
            assert run.line(target).startswith(f"{target}: ok ("), describe(run.proc)
        assert run.target_files() == expected
        assert {t["name"]: t["status"] for t in run.report["targets"]} == dict.fromkeys(expected, "ok")
        # each run warms files no earlier run stored: none was cached before, each was fetched
        for target in run.report["targets"]:
            assert {(f["cached_before"], f["fetched"]) for f in target["files"]} == {(False, True)}, target
        # ... once: devpi fetched each file from the upstream exactly once
        assert run.file_gets == dict.fromkeys({f for files in expected.values() for f in files}, 1)


def test_offline_devpi_stores_exactly_the_union_of_the_targets_files(scenario: Scenario) -> None:
    wanted: dict[str, set[str]] = {}
    for expected in (EXPECTED_MATRIX, EXPECTED_LADDER, EXPECTED_MUSL, EXPECTED_NATPKG):
        for files in expected.values():
            for filename in files:
                wanted.setdefault(_project(filename), set()).add(filename)
    stored = {project: files for project, files in scenario.stored.items() if files}
    assert stored == wanted
    # nothing a target does not install was fetched to find out: pure-a 1.0, ladder-rev 1.0,
    # py313plus (--check) and the other natpkg/ladder wheels stay upstream
    assert PURE_A_2 in stored["pure-a"] and "pure_a-1.0-py3-none-any.whl" not in stored["pure-a"]
    assert stored["ladder-rev"] == {LADDER_REV_2}
    assert "py313plus" not in stored


def test_ladders_each_target_gets_what_pip_there_picks(scenario: Scenario) -> None:
    files = scenario.ladder.target_files()
    for python in PYTHONS:
        # glibc >= 2.28 takes ladder-pkg 2.0; a manylinux2014 machine cannot, and gets 1.0
        assert LADDER_PKG_2 in files[f"{python}-{LINUX}"]
        assert LADDER_PKG_1 in files[f"{python}-{LINUX2014}"]
        # ladder-rev 2.0 ships manylinux2014 only, which a glibc 2.28 machine accepts as well
        assert LADDER_REV_2 in files[f"{python}-{LINUX}"]
        assert LADDER_REV_2 in files[f"{python}-{LINUX2014}"]


def test_naive_pip_download_would_backtrack_on_the_reverse_ladder(scenario: Scenario, tmp_path: Path) -> None:
    """Why ladder-rev is a trap: ``--platform manylinux_2_28_x86_64`` alone (straight from the
    upstream, not through devpi) misses the manylinux2014 wheel of 2.0 and picks 1.0."""
    picked = _pip_resolve(scenario.upstream.url, "3.9", [LINUX], ["ladder-rev"])
    assert picked == {LADDER_REV_1}


def test_sdists_notes_and_their_build_backend(scenario: Scenario) -> None:
    run = scenario.matrix
    notes = run.report["notes"]
    sdist_only = [note for note in notes if note.startswith("sdist-only 1.0:")]
    static = [note for note in notes if note.startswith("static-sdist 1.0:")]
    assert len(sdist_only) == 1 and len(static) == 1, notes
    assert "metadata built on this machine" in sdist_only[0]
    assert "static PEP 643 metadata" in static[0]
    assert "static PEP 643" not in sdist_only[0] and "built on this machine" not in static[0]
    for note in (sdist_only[0], static[0]):
        assert "warmup-backend" in note
        assert f"note: {note}" in run.output
    # the backend and what it needs are build files of every target, installed by none
    for target in run.report["targets"]:
        roles = {f["project"]: f["role"] for f in target["files"]}
        assert roles[BACKEND_NAME] == roles[BACKEND_HELPER] == "build", target["name"]
        assert {p for p, role in roles.items() if role == "build"} == {BACKEND_NAME, BACKEND_HELPER}
        # pure python sdists are not "compiled packages"
        assert target["warnings"] == [], target["name"]


def test_offline_install_on_this_machine(scenario: Scenario, make_venv: Callable[[str], Path]) -> None:
    """The manylinux_2_28_x86_64 targets run here: install for real from the offline devpi.

    sdist-only (reached through needs-sdist) and static-sdist are built here, offline, by
    warmup-backend, which pip's isolated build env takes from the index too."""
    scene = scenario.scene
    assert scene.server.offline
    imports = "pure_a, pure_b, needs_win, needs_old_py, needs_arm, needs_sdist, sdist_only, static_sdist, ladder_pkg, ladder_rev"
    code = (
        f"import importlib.util, {imports};"
        "print(pure_a.__version__, sdist_only.__version__, static_sdist.__version__,"
        " ladder_pkg.__version__, ladder_pkg.WHEEL_TAG, ladder_rev.__version__, ladder_rev.WHEEL_TAG,"
        " *(bool(importlib.util.find_spec(m)) for m in ('old_py_dep', 'winonly_dep', 'arm_dep')))"
    )
    for python in PYTHONS:
        venv = make_venv(python)
        proc = pip_install(
            venv, "-r", str(scenario.requirements), *LADDER_REQUIREMENTS, index_url=scene.simple_url
        )
        built = re.search(r"^Building wheels for collected packages: (.*)$", proc.stdout, re.MULTILINE)
        assert built and set(built.group(1).split(", ")) == {"sdist-only", "static-sdist"}, describe(proc)
        out = venv_python_ok(venv, code).stdout.split()
        assert out == [
            "2.0", "1.0", "1.0",
            "2.0", "cp39-abi3-manylinux_2_28_x86_64", "2.0", M2014,
            str(python == "3.9"), "False", "False",
        ], out  # fmt: skip


def test_offline_index_resolves_for_each_target_as_online(scenario: Scenario) -> None:
    """pip with each target's tags against the *offline* index finds the wheel-only part of
    the target's set with the same versions. pip evaluates markers for this machine, so the
    marker-selected dependencies are checked on the offline pages instead."""
    marker_deps = {WINONLY_DEP, OLD_PY_DEP, ARM_DEP}
    checks = {}  # target -> (requirements, expected filenames)
    for name, files in EXPECTED_MATRIX.items():
        wheels = {f for f, role in files.items() if f.endswith(".whl") and role == "install"}
        checks[name] = (
            ["pure-a", "needs-win", "needs-old-py", "needs-arm"],
            wheels - marker_deps - {NEEDS_SDIST},
        )
    for name, files in {**EXPECTED_LADDER, **EXPECTED_MUSL}.items():
        requirements, expected = checks[name]
        more = ["musl-only"] if name.endswith(MUSL) else list(LADDER_REQUIREMENTS)
        checks[name] = (requirements + more, expected | set(files))
    with ThreadPoolExecutor(4) as pool:
        futures = {
            name: pool.submit(_pip_resolve, scenario.scene.simple_url, *_split(name), requirements)
            for name, (requirements, _) in checks.items()
        }
        # which marker-selected dependencies plain pip adds depends on the Python running it
        picked = {name: future.result() - marker_deps for name, future in futures.items()}
    assert picked == {name: expected for name, (_, expected) in checks.items()}

    # the marker-selected dependencies are stored for the targets that need them
    for name, files in EXPECTED_MATRIX.items():
        for filename in marker_deps & set(files):
            assert filename in scenario.stored[_project(filename)], name
    # and the sdists with what builds them (pip on the target builds them from the index)
    for filename in (SDIST_ONLY, STATIC_SDIST, BACKEND, HELPER):
        assert filename in scenario.stored[_project(filename)]


# -- 2. --check ---------------------------------------------------------------------------


def test_check_after_warming_finds_everything_and_downloads_nothing(scenario: Scenario) -> None:
    run = scenario.check_ok
    assert run.proc.returncode == 0, describe(run.proc)
    assert run.file_gets == {}, f"--check made devpi fetch files upstream: {run.file_gets}"
    assert run.report["check"] is True
    for target in run.report["targets"]:
        assert (target["status"], target["missing"]) == ("complete", []), target
        assert all(f["cached_before"] and not f["fetched"] for f in target["files"]), target
        assert run.line(target["name"]).startswith(f"{target['name']}: complete (")
    assert run.target_files() == EXPECTED_MATRIX
    # it says it is checking, and its summary counts what devpi stores, not fetches
    assert "checking (nothing is fetched into devpi) http" in run.proc.stdout
    files = len({f for names in EXPECTED_MATRIX.values() for f in names})
    assert (
        f"checked {files} unique files: devpi stores {files}, lacks 0; nothing was fetched" in run.proc.stdout
    )


def test_check_names_what_is_missing_and_still_downloads_nothing(scenario: Scenario) -> None:
    run = scenario.check_missing
    assert run.proc.returncode == 1, describe(run.proc)
    # to resolve on, --check reads the one file devpi lacks from devpi's upstream, around devpi:
    # its PEP 658 metadata first (this upstream has none), then the wheel (devpi stores nothing new:
    # see the end of this test)
    assert run.file_gets == {f"{PY313PLUS}.metadata": 1, PY313PLUS: 1}, run.file_gets
    statuses = {t["name"]: (t["status"], t["missing"]) for t in run.report["targets"]}
    targets = [f"{python}-{platform}" for python in PYTHONS for platform in CHECK_PLATFORMS]
    assert statuses == {
        name: (("missing", [PY313PLUS]) if name.startswith("3.13-") else ("complete", [])) for name in targets
    }
    for name in targets:
        if name.startswith("3.13-"):
            assert re.fullmatch(rf"{name}: missing 1 of \d+ file\(s\): {PY313PLUS}", run.line(name)), (
                run.line(name)
            )
        else:
            assert run.line(name).startswith(f"{name}: complete (")
    assert scenario.stored.get("py313plus", set()) == set()  # devpi stores no file of it


@pytest.mark.parametrize("cache", ["warm", "cold"])
def test_check_before_warming_names_every_missing_file(scenario: Scenario, cache: str) -> None:
    """Nothing of the index is stored: ``--check`` lists every file the target needs, whether
    or not this machine's metadata cache knows the wheels (README: missing n of m file(s): names)."""
    run = scenario.fresh_warm_cache if cache == "warm" else scenario.fresh_cold_cache
    assert run.proc.returncode == 1, describe(run.proc)
    # a cold metadata cache means reading each missing wheel once, around devpi, to resolve on
    read_around_devpi = {name: 1 for wheel in FRESH_MISSING for name in (f"{wheel}.metadata", wheel)}
    assert run.file_gets == ({} if cache == "warm" else read_around_devpi), run.file_gets
    [target] = run.report["targets"]
    assert (target["status"], sorted(target["missing"])) == ("missing", sorted(FRESH_MISSING)), describe(
        run.proc
    )
    assert run.line(f"3.12-{WIN}").startswith(f"3.12-{WIN}: missing 4 of 4 file(s): ")
    assert all(files == set() for files in scenario.fresh_stored.values())


# -- 3. a compiled package with no wheel for one target -------------------------------------


def test_compiled_package_without_a_wheel_fails_only_that_target(scenario: Scenario) -> None:
    run = scenario.natpkg
    assert run.proc.returncode == 1, describe(run.proc)
    failed = f"3.9-{ARM}"
    assert run.line(failed).startswith(f"{failed}: FAILED: ")
    assert "natpkg" in run.line(failed)
    statuses = {t["name"]: t["status"] for t in run.report["targets"]}
    assert statuses == {name: ("failed" if name == failed else "ok") for name in EXPECTED_NATPKG}
    assert run.target_files() == EXPECTED_NATPKG
    # pure-a and pure-b were stored by the matrix run: probed, not fetched again
    for target in run.report["targets"]:
        for f in target["files"]:
            warmed_before = f["project"] != "natpkg"
            assert (f["cached_before"], f["fetched"]) == (warmed_before, not warmed_before), f
    assert run.file_gets == dict.fromkeys(set(NATPKG.values()), 1)
    assert any(p.startswith(f"{failed}: ") and "natpkg" in p for p in run.report["problems"])
    assert scenario.stored["natpkg"] == set(NATPKG.values())


# -- helpers ------------------------------------------------------------------------------


def _split(target: str) -> tuple[str, str]:
    """``3.9-win_amd64`` -> ("3.9", "win_amd64")."""
    python, platform = target.split("-", 1)
    return python, platform


def _project(filename: str) -> str:
    if filename.endswith(".whl"):
        return str(parse_wheel_filename(filename)[0])
    return str(parse_sdist_filename(filename)[0])


def _pip_resolve(index_url: str, python: str, platform: str | list[str], requirements: list[str]) -> set[str]:
    """Filenames ``pip install --dry-run`` picks for a CPython ``python`` on ``platform``
    (every tag pip there accepts), or accepting exactly the tags of a list."""
    platforms = pip_platforms(platform) if isinstance(platform, str) else platform
    argv = [
        sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-",
        "--ignore-installed", "--only-binary=:all:", "--disable-pip-version-check",
        "--implementation", "cp", "--python-version", python, "--abi", f"cp{python.replace('.', '')}",
        "--index-url", index_url,
        *(option for platform in platforms for option in ("--platform", platform)),
        *requirements,
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=clean_env(), check=False, timeout=120)
    assert proc.returncode == 0, describe(proc)
    report = json.loads(proc.stdout)
    return {item["download_info"]["url"].rsplit("/", 1)[1] for item in report["install"]}


def test_expected_tables_name_real_files(dists: Dists) -> None:
    """The hand-written tables name files the upstream really has (no typo passes silently)."""
    for expected in (EXPECTED_MATRIX, EXPECTED_LADDER, EXPECTED_MUSL, EXPECTED_NATPKG):
        for files in expected.values():
            assert set(files) <= set(dists.filenames)
    assert {PY313PLUS, LADDER_REV_1, *NATPKG.values()} <= set(dists.filenames)
