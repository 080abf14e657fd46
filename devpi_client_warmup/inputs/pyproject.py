"""``[tool.devpi-warmup]`` in pyproject.toml: the matrix and what to warm."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from .._compat import tomllib
from ..errors import InputError
from .requirements import Inputs, project_requirements

TABLE = "tool.devpi-warmup"
_LIST_KEYS = (
    "python", "platform", "requirements", "constraints", "packages", "extras", "groups", "only-binary", "no-binary",
)  # fmt: skip
_KEYS = (*_LIST_KEYS, "lock", "prefer-newest")
_PY_CLASSIFIER = "Programming Language :: Python :: "


@dataclass
class MatrixFile:
    """What a ``[tool.devpi-warmup]`` table asks for."""

    path: Path
    pythons: list[str]
    platforms: list[str]
    inputs: Inputs
    locks: list[Path]


def load(where: str) -> MatrixFile:
    """Read ``[tool.devpi-warmup]`` from ``./pyproject.toml`` ("pyproject") or a path."""
    path = Path("pyproject.toml") if where == "pyproject" else Path(where).expanduser()
    if path.is_dir():
        path = path / "pyproject.toml"
    try:
        with path.open("rb") as stream:
            document = tomllib.load(stream)
    except FileNotFoundError:
        raise InputError(f"--matrix: {path} not found") from None
    except OSError as exc:
        raise InputError(f"--matrix: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"--matrix: {path} is not valid TOML: {exc}") from None
    table = document.get("tool", {}).get("devpi-warmup")
    if not isinstance(table, dict):
        raise InputError(f"--matrix: {path} has no [{TABLE}] table")
    values = _validate(table, path)
    project = document.get("project", {})
    inputs = Inputs()
    base = path.parent
    for name in values["requirements"]:
        inputs.read(base / name)
    for name in values["constraints"]:
        inputs.read(base / name, constraint=True)
    inputs.add_packages(values["packages"], f"{path} [{TABLE}] packages")
    for key in ("only-binary", "no-binary"):
        for value in values[key]:
            inputs.add_format(f"--{key}", value, f"{path} [{TABLE}] {key}")
    inputs.prefer_newest = table.get("prefer-newest", False)
    if not values["requirements"] and not values["packages"] and not values["lock"]:
        specs = project_requirements(
            project, document.get("dependency-groups", {}), values["extras"], values["groups"], str(path)
        )
        inputs.add_packages(specs, f"{path} [project]")
    pythons = values["python"] or _pythons_from_classifiers(project, path)
    locks = [base / name for name in values["lock"]]
    return MatrixFile(path, pythons, values["platform"], inputs, locks)


def _validate(table: dict[str, Any], path: Path) -> dict[str, list[str]]:
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise InputError(f"{path}: unknown key {unknown[0]!r} in [{TABLE}] (known: {', '.join(_KEYS)})")
    if not isinstance(table.get("lock", ""), str):
        raise InputError(f"{path}: [{TABLE}] lock must be a string (a pylock.toml or uv.lock path)")
    if not isinstance(table.get("prefer-newest", False), bool):
        raise InputError(f"{path}: [{TABLE}] prefer-newest must be true or false")
    values = {"lock": [table["lock"]] if table.get("lock") else []}
    for key in _LIST_KEYS:
        value = table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise InputError(f"{path}: [{TABLE}] {key} must be a list of strings")
        values[key] = value
    return values


def _pythons_from_classifiers(project: dict[str, Any], path: Path) -> list[str]:
    """The ``Python :: 3.X`` classifiers that ``requires-python`` allows."""
    try:
        allowed = SpecifierSet(project.get("requires-python", ""))
    except InvalidSpecifier:
        raise InputError(f"{path}: invalid requires-python {project.get('requires-python')!r}") from None
    versions = [
        c[len(_PY_CLASSIFIER) :]
        for c in project.get("classifiers", [])
        if c.startswith(_PY_CLASSIFIER + "3.")
    ]
    pythons = [v for v in versions if allowed.contains(f"{v}.0", prereleases=True)]
    if not pythons:
        raise InputError(
            f"{path}: [{TABLE}] has no 'python' list and no 'Programming Language :: Python :: 3.X'"
            " classifiers to derive it from"
        )
    return pythons
