"""A tiny PEP 517 build backend, shipped as ``warmup_backend/__init__.py``.

It is never imported by the tests themselves: ``dists.make_backend_wheel``
packs this file (next to ``_distwriter.py``) into the ``warmup-backend``
wheel.  It runs in pip's isolated build env on Python 3.9 .. 3.13, so it only
uses the standard library.  Project metadata comes from the JSON file
``warmup-backend.json`` in the source tree; the package is ``src/<module>/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# The backend genuinely depends on its helper dist: building fails without it.
import warmup_backend_helper  # type: ignore[import-not-found]  # noqa: F401

from ._distwriter import (
    dist_info_name,
    metadata_text,
    wheel_text,
    write_sdist,
    write_wheel,
)

CONFIG_FILE = "warmup-backend.json"


def _config() -> dict[str, Any]:
    config: dict[str, Any] = json.loads(Path(CONFIG_FILE).read_text(encoding="utf-8"))
    return config


def _record(hook: str) -> None:
    """Append ``hook name`` to the project's ``hook_log``, if it names one: the tests read it
    to prove that warming ran no build backend."""
    config = _config()
    if config.get("hook_log"):
        with open(config["hook_log"], "a", encoding="utf-8") as log:
            log.write(f"{hook} {config['name']}\n")


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def get_requires_for_build_wheel(config_settings: Any = None) -> list[str]:
    _record("get_requires_for_build_wheel")
    return []


def get_requires_for_build_sdist(config_settings: Any = None) -> list[str]:
    _record("get_requires_for_build_sdist")
    return []


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Any = None) -> str:
    _record("prepare_metadata_for_build_wheel")
    cfg = _config()
    name = dist_info_name(cfg["name"], cfg["version"])
    target = Path(metadata_directory, name)
    target.mkdir(parents=True, exist_ok=True)
    meta = metadata_text(cfg["name"], cfg["version"], cfg.get("dependencies", ()), cfg.get("requires-python"))
    (target / "METADATA").write_text(meta, encoding="utf-8")
    (target / "WHEEL").write_text(wheel_text("py3-none-any"), encoding="utf-8")
    return name


def build_wheel(wheel_directory: str, config_settings: Any = None, metadata_directory: Any = None) -> str:
    _record("build_wheel")
    cfg = _config()
    wheel = write_wheel(
        Path(wheel_directory),
        cfg["name"],
        cfg["version"],
        _tree(Path("src")),
        requires_dist=cfg.get("dependencies", ()),
        requires_python=cfg.get("requires-python"),
    )
    return wheel.name


def build_sdist(sdist_directory: str, config_settings: Any = None) -> str:
    _record("build_sdist")
    cfg = _config()
    sdist = write_sdist(Path(sdist_directory), cfg["name"], cfg["version"], _tree(Path(os.getcwd())))
    return sdist.name
