"""The targets a benchmark warms: Python versions x platforms, and their environment markers."""

from __future__ import annotations

from dataclasses import dataclass

# marker variables of a platform: sys_platform, platform_system, os_name, platform_machine
PLATFORM_MARKERS = {
    "manylinux2014_x86_64": ("linux", "Linux", "posix", "x86_64"),
    "win_amd64": ("win32", "Windows", "nt", "AMD64"),
    "macosx_11_0_arm64": ("darwin", "Darwin", "posix", "arm64"),
}


@dataclass(frozen=True)
class Matrix:
    pythons: tuple[str, ...]
    platforms: tuple[str, ...]

    def targets(self) -> list[tuple[str, str]]:
        """(python, platform) pairs in the loops' order: each Python of a platform, platform by platform."""
        return [(python, platform) for platform in self.platforms for python in self.pythons]

    def options(self) -> list[str]:
        """The matrix as ``devpi warmup`` options."""
        return ["--python", ",".join(self.pythons), "--platform", ",".join(self.platforms)]

    def describe(self) -> str:
        return f"CPython {', '.join(self.pythons)} x {', '.join(self.platforms)}"


# bench.py's matrix (9 targets)
BENCH = Matrix(("3.10", "3.12", "3.13"), ("manylinux2014_x86_64", "win_amd64", "macosx_11_0_arm64"))


def marker_environment(python: str, platform: str) -> dict[str, str]:
    """PEP 508 marker variables of CPython ``python`` on ``platform`` (one of PLATFORM_MARKERS)."""
    sys_platform, system, os_name, machine = PLATFORM_MARKERS[platform]
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "os_name": os_name,
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": system,
        "platform_version": "",
        "python_full_version": f"{python}.0",
        "python_version": python,
        "sys_platform": sys_platform,
    }
