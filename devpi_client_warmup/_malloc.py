"""The tool's memory does not grow with its threads (glibc's malloc arenas)."""

from __future__ import annotations

import ctypes
import sys

_M_ARENA_MAX = -8  # glibc's mallopt() parameter
_ARENAS = 2


def limit_arenas() -> None:
    """glibc gives threads malloc arenas of their own (up to 8 per CPU), and memory freed in an
    arena stays with the process. A run's threads (serving pip, fetching, probing) made that a
    third of the tool's peak RSS; two arenas shared by all cost no measurable time. Elsewhere
    (no glibc) this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, _ARENAS)
