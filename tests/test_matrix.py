"""Tag ladders and marker environments of targets (pure functions, on top of the real tests)."""

from __future__ import annotations

import sys

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, sys_tags

from devpi_client_warmup.errors import InputError
from devpi_client_warmup.matrix import Platform, Python, Target, build_matrix


def ladder(tag: str) -> list[str]:
    return list(Platform.parse(tag).ladder)


def test_manylinux_names_the_oldest_glibc_and_accepts_everything_older() -> None:
    tags = ladder("manylinux_2_28_x86_64")
    assert tags[0] == "manylinux_2_28_x86_64"
    assert tags[-1] == "linux_x86_64"
    for accepted in ("manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux2010_x86_64",
                     "manylinux1_x86_64", "manylinux_2_5_x86_64"):  # fmt: skip
        assert accepted in tags
    assert "manylinux_2_29_x86_64" not in tags
    assert tags.index("manylinux_2_17_x86_64") + 1 == tags.index("manylinux2014_x86_64")


def test_legacy_manylinux_alias_is_its_glibc() -> None:
    assert ladder("manylinux2014_x86_64") == ladder("manylinux_2_17_x86_64")
    assert "manylinux_2_28_x86_64" not in ladder("manylinux2014_x86_64")


def test_other_architectures_stop_at_glibc_2_17() -> None:
    tags = ladder("manylinux_2_28_aarch64")
    assert tags[-3:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64", "linux_aarch64"]
    assert Platform.parse("manylinux_2_28_aarch64").marker_environment["platform_machine"] == "aarch64"


def test_musllinux_accepts_older_musl() -> None:
    assert ladder("musllinux_1_2_x86_64") == ["musllinux_1_2_x86_64", "musllinux_1_1_x86_64",
                                              "musllinux_1_0_x86_64", "linux_x86_64"]  # fmt: skip


def test_macos_like_pip_with_universal2() -> None:
    tags = ladder("macosx_11_0_arm64")
    assert tags[0] == "macosx_11_0_arm64"
    assert "macosx_11_0_universal2" in tags
    assert not any(tag.startswith("macosx_12") for tag in tags)
    intel = ladder("macosx_10_13_x86_64")
    assert "macosx_10_9_x86_64" in intel and "macosx_10_13_universal2" in intel
    with pytest.raises(InputError, match="arm64 or x86_64"):
        Platform.parse("macosx_11_0_universal2")


@pytest.mark.parametrize(
    ("tag", "machine"), [("win_amd64", "AMD64"), ("win32", "x86"), ("win_arm64", "ARM64")]
)
def test_windows(tag: str, machine: str) -> None:
    platform = Platform.parse(tag)
    assert platform.ladder == (tag,)
    env = platform.marker_environment
    assert (env["sys_platform"], env["os_name"], env["platform_system"], env["platform_machine"]) == (
        "win32", "nt", "Windows", machine,
    )  # fmt: skip


def test_aliases_are_documented_floors() -> None:
    assert Platform.parse("linux").tag == "manylinux_2_28_x86_64"
    assert Platform.parse("windows").tag == "win_amd64"
    assert Platform.parse("macos-arm64").tag == "macosx_11_0_arm64"


@pytest.mark.parametrize("text", ["manylinux_3_1_x86_64", "solaris", "win_amd65", "linux x86_64", ""])
def test_unknown_platforms_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="unknown platform"):
        Platform.parse(text)


@pytest.mark.parametrize("text", ["2.7", "3", "3.12.x", "py3.12", "3.12t"])
def test_unknown_pythons_are_input_errors(text: str) -> None:
    with pytest.raises(InputError, match="unknown Python version"):
        Python.parse(text)


def test_free_threaded_target_has_no_abi3() -> None:
    target = Target(Python.parse("3.13t"), Platform.parse("manylinux_2_28_x86_64"))
    tags = set(target.tags)
    assert Tag("cp313", "cp313t", "manylinux_2_17_x86_64") in tags
    assert Tag("cp313", "abi3", "manylinux_2_17_x86_64") not in tags
    assert Tag("cp313", "cp313", "manylinux_2_17_x86_64") not in tags
    assert target.pip_options[:6] == [
        "--implementation",
        "cp",
        "--python-version",
        "3.13.9",
        "--abi",
        "cp313t",
    ]


def test_target_tags_rank_best_first() -> None:
    target = Target(Python.parse("3.12"), Platform.parse("manylinux_2_28_x86_64"))
    tags = target.tags
    assert tags[0] == Tag("cp312", "cp312", "manylinux_2_28_x86_64")
    assert tags.index(Tag("cp312", "abi3", "manylinux_2_28_x86_64")) < tags.index(Tag("py3", "none", "any"))
    assert Tag("cp39", "abi3", "manylinux2014_x86_64") in tags
    assert Tag("cp313", "abi3", "manylinux_2_28_x86_64") not in tags


@pytest.mark.parametrize(
    ("marker", "python", "platform", "expected"),
    [
        ('sys_platform == "win32"', "3.12", "win_amd64", True),
        ('sys_platform == "win32"', "3.12", "manylinux_2_28_x86_64", False),
        ('platform_system == "Darwin" and platform_machine == "arm64"', "3.12", "macosx_11_0_arm64", True),
        ('python_version < "3.11"', "3.10", "win_amd64", True),
        ('python_version < "3.11"', "3.13", "win_amd64", False),
        ('python_full_version >= "3.12.4"', "3.12.4", "win_amd64", True),
        ('python_full_version >= "3.12.4"', "3.12.3", "win_amd64", False),
        # a bare 3.X is a machine kept up to date: the newest patch release, not 3.X.0
        ('python_full_version >= "3.12.4"', "3.12", "win_amd64", True),
        ('python_full_version in "3.9.0, 3.9.1"', "3.9", "win_amd64", False),
        ('implementation_name == "cpython" and os_name == "posix"', "3.9", "musllinux_1_2_aarch64", True),
        ('platform_machine == "x86_64"', "3.9", "manylinux_2_28_aarch64", False),
    ],
)
def test_markers_are_evaluated_for_the_target(
    marker: str, python: str, platform: str, expected: bool
) -> None:
    target = Target(Python.parse(python), Platform.parse(platform))
    assert Marker(marker).evaluate(target.marker_environment) is expected


def test_matrix_is_the_product_of_comma_lists_without_repeats() -> None:
    targets = build_matrix(["3.9,3.13", "3.9"], ["linux", "win_amd64,manylinux_2_28_x86_64"])
    assert [t.name for t in targets] == [
        "3.9-manylinux_2_28_x86_64", "3.9-win_amd64", "3.13-manylinux_2_28_x86_64", "3.13-win_amd64",
    ]  # fmt: skip


def test_default_target_is_this_interpreter_on_this_machine() -> None:
    (target,) = build_matrix([], [])
    assert target.python == Python.running()
    assert target.platform.tag in {tag.platform for tag in sys_tags()}
    # exactly what pip here accepts, in pip's order: on glibc Linux the whole manylinux ladder
    assert list(target.platform.ladder) == list(dict.fromkeys(tag.platform for tag in sys_tags()))
    if sys.platform == "linux":
        assert not target.platform.tag.startswith("linux_")
        assert target.platform.tag in target.platform.ladder


def test_a_fleet_alias_is_one_target_per_floor() -> None:
    targets = build_matrix(["3.12"], ["linux-mixed", "win_amd64"])
    assert [t.name for t in targets] == [
        "3.12-manylinux2014_x86_64", "3.12-manylinux_2_28_x86_64", "3.12-win_amd64",
    ]  # fmt: skip


@pytest.mark.parametrize("python", ["3.9", "3.12", "3.13t"])
@pytest.mark.parametrize(
    "platform",
    [
        "manylinux2014_x86_64",
        "manylinux_2_28_aarch64",
        "musllinux_1_2_x86_64",
        "win_amd64",
        "macosx_11_0_arm64",
    ],
)
def test_target_tags_hold_every_tag_pip_accepts_with_the_target_options(python: str, platform: str) -> None:
    """The gateway leaves out of a target's pages the wheels whose tags are not in ``Target.tags``:
    safe while every tag pip accepts is among them (and they agree where pip's packaging is as
    new as ours; an older one does not know the ``abi3t`` of free-threaded builds)."""
    from pip._internal.utils.compatibility_tags import get_supported

    target = Target(Python.parse(python), Platform.parse(platform))
    options = target.pip_options
    value = {option: options[i + 1] for i, option in enumerate(options) if option.startswith("--")}
    platforms = [options[i + 1] for i, option in enumerate(options) if option == "--platform"]
    version = "".join(value["--python-version"].split(".")[:2])
    pips = get_supported(
        version=version, platforms=platforms, impl=value["--implementation"], abis=[value["--abi"]]
    )
    ours = set(map(str, target.tags))
    assert set(map(str, pips)) <= ours
    if python != "3.13t" or any("abi3t" in str(tag) for tag in pips):
        assert set(map(str, pips)) == ours
