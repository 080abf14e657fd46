"""The project's test helpers that the benchmarks reuse, imported in this one place.

From ``tests/support/devpi.py``: the environment without the machine's pip configuration
(``clean_env``), console scripts next to the running Python (``executable``), checked
subprocesses (``run``), a free port, and devpi-server, the ``devpi`` client and a scene (a user
with a mirror index and an index inheriting it).  From ``tests/support/upstream.py``: a folder
of wheels and sdists served as a PEP 503/691 simple index on 127.0.0.1.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.devpi import (
    ROOT_PASSWORD,
    DevpiClient,
    DevpiScene,
    DevpiServer,
    clean_env,
    executable,
    free_port,
    run,
    setup_scene,
)
from tests.support.upstream import Upstream

__all__ = [
    "ROOT_PASSWORD",
    "DevpiClient",
    "DevpiScene",
    "DevpiServer",
    "Upstream",
    "clean_env",
    "executable",
    "free_port",
    "run",
    "setup_scene",
]
