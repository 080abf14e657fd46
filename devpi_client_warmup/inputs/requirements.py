"""Requirement inputs: PKG arguments, pip requirements/constraints files, pyproject.toml tables."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.dependency_groups import resolve_dependency_groups
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..errors import InputError

_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_COMMENT_RE = re.compile(r"(^|\s+)#.*$")
_ENV_VAR_RE = re.compile(r"\$\{([A-Z0-9_]+)\}")
_HASH_RE = re.compile(r"\s--hash[=\s]+(\S+)")
# pip options that only change where or how pip fetches: warmup always uses the devpi index.
_IGNORED_OPTIONS = {
    "-i", "--index-url", "--extra-index-url", "--no-index", "-f", "--find-links",
    "--trusted-host", "--require-hashes", "--use-feature", "--config-settings", "--global-option",
}  # fmt: skip


@dataclass(frozen=True)
class Line:
    """One requirement, where it came from, and the hashes pinned for it."""

    requirement: Requirement
    origin: str
    hashes: tuple[str, ...] = ()

    def pip_line(self) -> str:
        """The requirement as a line of a pip requirements file."""
        return " ".join([str(self.requirement), *(f"--hash={h}" for h in self.hashes)])


@dataclass
class Inputs:
    """Everything to warm: requirements, constraints, and notes about what was skipped."""

    requirements: list[Line] = field(default_factory=list)
    constraints: list[Line] = field(default_factory=list)
    pre: bool = False
    notes: list[str] = field(default_factory=list)
    formats: list[tuple[str, str]] = field(default_factory=list)  # pip's --only-binary/--no-binary, in order
    prefer_newest: bool = False  # pip's plain rule instead of --prefer-binary

    def add_format(self, option: str, value: str, origin: str) -> None:
        """Record pip's ``--only-binary`` or ``--no-binary`` with ``value`` (:all:, :none: or names)."""
        names = [name.strip() for name in value.split(",") if name.strip()]
        if not names:
            raise InputError(f"{origin}: {option} needs :all:, :none: or package names")
        for name in names:
            if name not in (":all:", ":none:") and not _NAME_RE.match(name):
                raise InputError(f"{origin}: {option} {name!r}: expected :all:, :none: or a package name")
        self.formats.append((option, ",".join(names)))

    def pip_options(self) -> list[str]:
        """pip's options for the selection policy: prefer wheels, and the format rules in order."""
        options = [] if self.prefer_newest else ["--prefer-binary"]
        for option, value in self.formats:
            options.append(f"{option}={value}")
        return options

    def add_packages(self, specs: Iterable[str], origin: str) -> None:
        for spec in specs:
            self.requirements.append(Line(parse_requirement(spec, origin), origin))

    def read(self, path: Path, *, constraint: bool = False) -> None:
        """Read a pip requirements (or constraints) file, following nested -r and -c."""
        for is_constraint, line in _read_requirements_file(path, constraint, self, seen=()):
            (self.constraints if is_constraint else self.requirements).append(line)

    def extend(self, other: Inputs) -> None:
        self.requirements += other.requirements
        self.constraints += other.constraints
        self.pre = self.pre or other.pre
        self.notes += other.notes
        self.formats += other.formats
        self.prefer_newest = self.prefer_newest or other.prefer_newest


def parse_requirement(text: str, origin: str) -> Requirement:
    is_reference = "@" in text or "://" in text
    if not is_reference and text.strip().lower().endswith((".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz")):
        raise InputError(f"{origin}: {text!r} is a file name; only packages from the index can be warmed")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        first_line = str(exc).splitlines()[0]
        raise InputError(f"{origin}: invalid requirement {text!r}: {first_line}") from None
    if requirement.url:
        raise InputError(
            f"{origin}: {text!r} is a direct URL reference; only packages from the index can be warmed"
        )
    return requirement


def _logical_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Lines of a requirements file with continuations joined and comments removed."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM is accepted, as pip does
    except FileNotFoundError:
        raise InputError(f"requirements file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read requirements file {path}: {exc}") from None
    buffer: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        if raw.endswith("\\") and not _COMMENT_RE.match(raw):
            buffer.append(raw[:-1])
            continue
        buffer.append(raw)
        line = _COMMENT_RE.sub("", "".join(buffer)).strip()
        buffer = []
        if line:
            yield start, _ENV_VAR_RE.sub(lambda m: os.environ.get(m.group(1), m.group(0)), line)
    if buffer and "".join(buffer).strip():
        yield start, "".join(buffer).strip()


def _read_requirements_file(
    path: Path, constraint: bool, inputs: Inputs, seen: tuple[Path, ...]
) -> Iterator[tuple[bool, Line]]:
    """Yield ``(is_constraint, line)`` for every requirement in ``path`` and the files it names."""
    resolved = path.resolve()
    if resolved in seen:
        raise InputError(f"{path}: requirements files include each other in a loop")
    for number, text in _logical_lines(path):
        origin = f"{path}:{number}"
        if text.startswith("-"):
            yield from _option_line(path, origin, text, constraint, inputs, (*seen, resolved))
            continue
        hashes = tuple(_HASH_RE.findall(" " + text))
        spec = _HASH_RE.sub("", " " + text).strip()
        if re.match(r"^(\.|/|~|[a-zA-Z][a-zA-Z0-9+.-]*://)", spec):
            raise InputError(
                f"{origin}: {spec!r} is a path or URL; only packages from the index can be warmed"
            )
        yield constraint, Line(parse_requirement(spec, origin), origin, hashes)


def _option_line(
    path: Path, origin: str, text: str, constraint: bool, inputs: Inputs, seen: tuple[Path, ...]
) -> Iterator[tuple[bool, Line]]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise InputError(f"{origin}: cannot parse {text!r}: {exc}") from None
    option, _, value = words[0].partition("=")
    if not value and len(words) > 1:
        value = words[1]
    if option in ("-r", "--requirement", "-c", "--constraint"):
        if not value:
            raise InputError(f"{origin}: {option} needs a file name")
        if "://" in value:
            raise InputError(f"{origin}: remote requirements files are not supported: {value}")
        nested_constraint = constraint or option in ("-c", "--constraint")
        yield from _read_requirements_file(path.parent / value, nested_constraint, inputs, seen)
    elif option == "--pre":
        inputs.pre = True
    elif option in ("--only-binary", "--no-binary"):
        inputs.add_format(option, value, origin)
    elif option == "--prefer-binary":
        pass  # warmup's default
    elif option in ("-e", "--editable"):
        raise InputError(f"{origin}: editable requirements cannot be warmed: {text}")
    elif option in _IGNORED_OPTIONS:
        inputs.notes.append(f"{origin}: ignored {option}: warmup always uses the devpi index")
    else:
        raise InputError(f"{origin}: unknown option {option!r}")


def project_requirements(
    project: Mapping[str, Any],
    groups_table: Mapping[str, Any],
    extras: Iterable[str],
    groups: Iterable[str],
    origin: str,
) -> list[str]:
    """``[project] dependencies`` plus named extras and PEP 735 dependency groups."""
    if "dependencies" in project.get("dynamic", []):
        raise InputError(
            f"{origin}: [project] dependencies are dynamic; name 'requirements' or 'packages'"
            " in [tool.devpi-warmup]"
        )
    specs = list(_string_list(project.get("dependencies", []), f"{origin}: [project] dependencies"))
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise InputError(f"{origin}: no [project.optional-dependencies] extra named {extra!r}")
        specs += _string_list(optional[extra], f"{origin}: optional-dependencies.{extra}")
    for group in groups:
        specs += _dependency_group(groups_table, group, origin)
    return specs


def _dependency_group(table: Mapping[str, Any], group: str, origin: str) -> list[str]:
    """PEP 735: a group's requirements, following ``{include-group = ...}`` (packaging's resolver)."""
    if canonicalize_name(group) not in {canonicalize_name(name) for name in table}:
        raise InputError(f"{origin}: no [dependency-groups] group named {group!r}")
    try:
        return [str(requirement) for requirement in resolve_dependency_groups(table, group)]
    except Exception as exc:  # noqa: BLE001 - packaging raises an ExceptionGroup of its findings
        causes = getattr(exc, "exceptions", None) or [exc]
        raise InputError(f"{origin}: dependency group {group!r}: {causes[0]}") from None


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InputError(f"{where} must be a list of strings")
    return value
