"""The devpi-client plugin: registers ``devpi warmup`` and its options."""

from __future__ import annotations

import argparse
import os

import pluggy

hookimpl = pluggy.HookimplMarker("devpiclient")


@hookimpl
def devpiclient_subcommands() -> list[tuple[object, str, str]]:
    return [(add_arguments, "warmup", "devpi_client_warmup.command:main")]


class _FormatAction(argparse.Action):
    """Keep ``--only-binary`` and ``--no-binary`` in one list, in order (pip applies them in order)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option: object = None,
    ) -> None:
        getattr(namespace, self.dest).append((str(option), str(values)))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """warm the current index with every file a Python x platform matrix needs offline.

    Resolves the requirements for every Python version x platform target (with the
    target's wheel tags and environment markers, not this machine's) and makes devpi
    fetch and store each file, so that every target can `pip install` from the index
    once the network is gone.
    """
    parser.add_argument("pkgspecs", metavar="PKG", nargs="*", help="requirement to warm, e.g. 'pandas>=2'")
    parser.add_argument(
        "-r", "--requirement", metavar="FILE", action="append", default=[],
        help="warm the requirements in a pip requirements file (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "-c", "--constraint", metavar="FILE", action="append", default=[],
        help="constrain versions with a pip constraints file (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--lock", metavar="FILE", action="append", default=[],
        help="warm exactly the releases of a pylock.toml or uv.lock, without resolving"
        " (-r pylock.toml and -r uv.lock do the same)",
    )  # fmt: skip
    parser.add_argument(
        "--matrix", metavar="pyproject|PATH",
        help="read [tool.devpi-warmup] from ./pyproject.toml or PATH; options given here override it",
    )  # fmt: skip
    parser.add_argument(
        "--python", metavar="VER", action="append", default=[],
        help="target CPython, e.g. 3.12 or 3.13t; repeatable or comma-separated (default: this one)",
    )  # fmt: skip
    parser.add_argument(
        "--platform",
        metavar="TAG",
        action="append",
        default=[],
        help="target platform: a wheel platform tag naming the oldest system to serve "
        "(manylinux_2_28_x86_64, win_amd64, macosx_11_0_arm64, ...) or an alias "
        "(linux, windows, macos, ...); repeatable or comma-separated (default: this machine)",
    )
    parser.add_argument(
        "--index", metavar="NAME|USER/NAME|URL", default=None,
        help="index to warm instead of the current one of 'devpi use' (also: DEVPI_INDEX)",
    )  # fmt: skip
    parser.add_argument(
        "--dest", metavar="DIR", default=None,
        help="also keep every file in DIR (a wheelhouse); files already there with the right hash are kept",
    )  # fmt: skip
    parser.add_argument(
        "--pin-dir", metavar="DIR", default=None,
        help="write DIR/<target>.txt for each warmed target: its releases, hash-pinned, for"
        " 'pip install --require-hashes -r DIR/<target>.txt' on that target",
    )  # fmt: skip
    parser.add_argument(
        "--check", action="store_true",
        help="download nothing: report, per target, the files devpi does not store yet; exit 1 if any",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", dest="dryrun", action="store_true",
        help="print the matrix and what would run, then stop",
    )  # fmt: skip
    parser.add_argument("--report", metavar="FILE", default=None, help="write a JSON report to FILE")
    parser.add_argument(
        "--jobs", metavar="N", type=int, default=min(8, os.cpu_count() or 1),
        help="targets resolved in parallel, one pip process each (default: the CPUs, at most 8: %(default)s)",
    )  # fmt: skip
    parser.add_argument(
        "--download-jobs", metavar="N", type=int, default=8,
        help="files fetched through devpi in parallel (network-bound; default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--pre", action="store_true", help="include pre-releases and development versions")
    parser.add_argument(
        "--only-binary", metavar="PKGS", action=_FormatAction, dest="formats", default=[],
        help="as pip's: take only wheels for these packages (comma-separated, :all: or :none:)",
    )  # fmt: skip
    parser.add_argument(
        "--no-binary", metavar="PKGS", action=_FormatAction, dest="formats", default=[],
        help="as pip's: take only sdists for these packages (comma-separated, :all: or :none:)",
    )  # fmt: skip
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument(
        "--prefer-binary", action="store_true",
        help="the default: per requirement, the newest release with a wheel for the target;"
        " an sdist only where no release has one (pip's --prefer-binary)",
    )  # fmt: skip
    selection.add_argument(
        "--prefer-newest", action="store_true",
        help="pip's plain rule instead: the newest release wins even where only its sdist fits"
        " (the target then builds it)",
    )  # fmt: skip
    parser.add_argument(
        "--refuse-builds", action="store_true",
        help="never run a package's build backend here to learn its metadata; a target that"
        " would need it fails, naming the package",
    )  # fmt: skip
    parser.add_argument(
        "-q", "--quiet", action="store_true",
        help="print only failing targets, problems and the summary (no live progress)",
    )  # fmt: skip
