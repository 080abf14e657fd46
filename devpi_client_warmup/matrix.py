"""The target matrix: Python versions x platforms, each with its tag ladder and marker environment.

A platform tag names the *oldest* system of its family that must be served:
``manylinux_2_28_x86_64`` is "any glibc >= 2.28 x86_64 machine", so it accepts every
wheel such a machine accepts (``manylinux_2_28`` down to ``manylinux_2_5`` and the
``manylinux1/2010/2014`` aliases), exactly like pip running on that machine.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from packaging import tags

from .errors import InputError

#: Friendly platform names and the wheel platform tag each stands for.
ALIASES: dict[str, str] = {
    "linux": "manylinux_2_28_x86_64",  # glibc >= 2.28: RHEL/Alma/Rocky 8, Debian 10, Ubuntu 20.04
    "linux-x86_64": "manylinux_2_28_x86_64",
    "linux-aarch64": "manylinux_2_28_aarch64",
    "linux-musl": "musllinux_1_2_x86_64",  # musl >= 1.2: Alpine 3.13
    "windows": "win_amd64",
    "windows-arm64": "win_arm64",
    "windows-x86": "win32",
    "macos": "macosx_11_0_arm64",  # Apple silicon, macOS >= 11
    "macos-arm64": "macosx_11_0_arm64",
    "macos-x86_64": "macosx_10_13_x86_64",  # Intel, macOS >= 10.13
}

#: Friendly names of several platforms at once: a fleet of old and new machines of one family.
#: A platform tag is a floor, so each floor in the fleet is a target of its own: glibc 2.17
#: machines take manylinux2014 wheels, newer ones prefer the manylinux_2_28 wheels of the
#: same releases (and newer releases that have only those).
FLEETS: dict[str, tuple[str, ...]] = {
    "linux-mixed": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
    "linux-aarch64-mixed": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
}

# PEP 600: the legacy manylinux names are aliases of these glibc versions.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
_LEGACY_GLIBC = {name: minor for minor, name in _LEGACY_MANYLINUX.items()}
_WINDOWS_MACHINES = {"win_amd64": "AMD64", "win32": "x86", "win_arm64": "ARM64"}

# The newest patch release of each CPython line this tool knows: a bare ``3.X`` means a machine
# kept up to date, so markers and Requires-Python see 3.X.<newest> (``!=3.9.0,!=3.9.1`` holds).
NEWEST_PATCH = {8: 20, 9: 25, 10: 19, 11: 14, 12: 12, 13: 9, 14: 0}

_PYTHON_RE = re.compile(r"^3\.(?P<minor>\d{1,2})(?:\.(?P<micro>\d{1,3}))?(?P<t>t)?$")
_PLATFORM_RE = re.compile(
    r"^(?:(?P<many>manylinux)_(?P<gmaj>\d+)_(?P<gmin>\d+)"
    r"|(?P<legacy>manylinux1|manylinux2010|manylinux2014)"
    r"|(?P<musl>musllinux)_(?P<mmaj>\d+)_(?P<mmin>\d+)"
    r"|(?P<mac>macosx)_(?P<osmaj>\d+)_(?P<osmin>\d+)"
    r"|(?P<linux>linux))_(?P<arch>[a-z0-9_]+)$"
)


@dataclass(frozen=True)
class Python:
    """A target CPython: ``3.12``, ``3.12.4`` or free-threaded ``3.13t``."""

    minor: int
    micro: int | None = None
    freethreaded: bool = False

    @classmethod
    def parse(cls, text: str) -> Python:
        match = _PYTHON_RE.match(text.strip())
        if not match:
            raise InputError(f"unknown Python version {text!r}: expected 3.X, 3.X.Y or 3.Xt (free-threaded)")
        python = cls(
            int(match["minor"]),
            int(match["micro"]) if match["micro"] else None,
            bool(match["t"]),
        )
        if python.freethreaded and python.minor < 13:
            raise InputError(f"unknown Python version {text!r}: free-threaded builds start at 3.13t")
        return python

    @classmethod
    def running(cls) -> Python:
        """The interpreter running this process."""
        freethreaded = bool(getattr(sys, "_is_gil_enabled", lambda: True)() is False)
        return cls(sys.version_info.minor, sys.version_info.micro, freethreaded)

    @property
    def version(self) -> tuple[int, int]:
        return (3, self.minor)

    @property
    def full_version(self) -> str:
        """``python_full_version`` as markers see it: without a micro, the newest patch known."""
        micro = self.micro if self.micro is not None else NEWEST_PATCH.get(self.minor, 0)
        return f"3.{self.minor}.{micro}"

    @property
    def abi(self) -> str:
        return f"cp3{self.minor}" + ("t" if self.freethreaded else "")

    def __str__(self) -> str:
        micro = f".{self.micro}" if self.micro is not None else ""
        return f"3.{self.minor}{micro}" + ("t" if self.freethreaded else "")


@dataclass(frozen=True)
class Platform:
    """A wheel platform tag naming the oldest system to serve, and what that system accepts."""

    tag: str
    ladder: tuple[str, ...] = field(repr=False)
    sys_platform: str = field(repr=False)
    machine: str = field(repr=False)

    @classmethod
    def parse(cls, text: str) -> Platform:
        tag = ALIASES.get(text.strip().lower(), text.strip())
        if tag in _WINDOWS_MACHINES:
            return cls(tag, (tag,), "win32", _WINDOWS_MACHINES[tag])
        match = _PLATFORM_RE.match(tag)
        if not match:
            raise InputError(
                f"unknown platform {text!r}: expected a wheel platform tag (manylinux_2_28_x86_64,"
                " musllinux_1_2_aarch64, macosx_11_0_arm64, win_amd64, ...)"
                f" or one of: {', '.join([*ALIASES, *FLEETS])}"
            )
        arch = match["arch"]
        if match["mac"]:
            if arch not in ("arm64", "x86_64"):
                raise InputError(
                    f"unknown platform {text!r}: name the Mac's CPU (arm64 or x86_64);"
                    " universal2 wheels are accepted by both"
                )
            version = (int(match["osmaj"]), int(match["osmin"]))
            return cls(tag, tuple(tags.mac_platforms(version, arch)), "darwin", arch)
        if match["many"] or match["legacy"]:
            if match["legacy"]:
                glibc_minor = _LEGACY_GLIBC[match["legacy"]]
            elif match["gmaj"] == "2":
                glibc_minor = int(match["gmin"])
            else:
                raise InputError(f"unknown platform {text!r}: only glibc 2.x exists")
            ladder = tuple(_manylinux_ladder(glibc_minor, arch)) + (f"linux_{arch}",)
        elif match["musl"]:
            if match["mmaj"] != "1":
                raise InputError(f"unknown platform {text!r}: only musl 1.x exists")
            minors = range(int(match["mmin"]), -1, -1)
            ladder = tuple(f"musllinux_1_{m}_{arch}" for m in minors) + (f"linux_{arch}",)
        else:
            ladder = (tag,)
        return cls(tag, ladder, "linux", arch)

    @classmethod
    def running(cls) -> Platform:
        """This machine: exactly the platform tags pip here accepts, in pip's order (packaging's
        ``sys_tags``); named after the best portable one (``manylinux_2_36_x86_64``, say)."""
        ladder = tuple(dict.fromkeys(tag.platform for tag in tags.sys_tags()))
        portable = [tag for tag in ladder if not tag.startswith("linux_")] or list(ladder)
        named = cls.parse(portable[0])
        return cls(named.tag, ladder, named.sys_platform, named.machine)

    @property
    def marker_environment(self) -> dict[str, str]:
        windows = self.sys_platform == "win32"
        system = {"win32": "Windows", "darwin": "Darwin", "linux": "Linux"}[self.sys_platform]
        return {
            "os_name": "nt" if windows else "posix",
            "sys_platform": self.sys_platform,
            "platform_system": system,
            "platform_machine": self.machine,
            "platform_release": "",
            "platform_version": "",
        }

    def __str__(self) -> str:
        return self.tag


def _manylinux_ladder(glibc_minor: int, arch: str) -> Iterator[str]:
    """``manylinux_2_{glibc_minor}`` down to the oldest manylinux of ``arch``, with aliases.

    Mirrors ``packaging._manylinux.platform_tags`` for a glibc we name instead of detect.
    """
    oldest = 5 if arch in ("x86_64", "i686") else 17
    for minor in range(glibc_minor, oldest - 1, -1):
        yield f"manylinux_2_{minor}_{arch}"
        if minor in _LEGACY_MANYLINUX:
            yield f"{_LEGACY_MANYLINUX[minor]}_{arch}"


@dataclass(frozen=True)
class Target:
    """One cell of the matrix: what a CPython on a platform accepts."""

    python: Python
    platform: Platform

    @property
    def name(self) -> str:
        return f"{self.python}-{self.platform}"

    @property
    def tags(self) -> list[tags.Tag]:
        """Every wheel tag the target accepts, best first (as pip ranks them)."""
        ladder = self.platform.ladder
        version = self.python.version
        return [
            *tags.cpython_tags(version, [self.python.abi], ladder),
            *tags.compatible_tags(version, f"cp3{self.python.minor}", ladder),
        ]

    @property
    def marker_environment(self) -> dict[str, str]:
        """PEP 508 environment markers of the target, not of this machine."""
        return {
            "implementation_name": "cpython",
            "implementation_version": self.python.full_version,
            "platform_python_implementation": "CPython",
            "python_version": f"3.{self.python.minor}",
            "python_full_version": self.python.full_version,
            **self.platform.marker_environment,
        }

    @property
    def pip_options(self) -> list[str]:
        """pip's interpreter/platform options for this target (the whole tag ladder)."""
        options = [
            "--implementation", "cp",
            "--python-version", self.python.full_version,
            "--abi", self.python.abi,
        ]  # fmt: skip
        for tag in self.platform.ladder:
            options += ["--platform", tag]
        return options


def split_values(values: Iterable[str]) -> list[str]:
    """Flatten repeatable, comma-separated option values, dropping empties and repeats."""
    items = (item.strip() for value in values for item in value.split(","))
    return list(dict.fromkeys(item for item in items if item))


def build_matrix(pythons: Sequence[str], platforms: Sequence[str]) -> list[Target]:
    """The product of Python versions and platforms; empty lists mean "this machine"."""
    parsed_pythons = [Python.parse(p) for p in split_values(pythons)] or [Python.running()]
    expanded = [tag for p in split_values(platforms) for tag in FLEETS.get(p.lower(), (p,))]
    parsed_platforms = [Platform.parse(p) for p in expanded] or [Platform.running()]
    targets = [Target(py, plat) for py, plat in itertools.product(parsed_pythons, parsed_platforms)]
    return list(dict.fromkeys(targets))
