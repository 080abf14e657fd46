"""The tool's memory does not grow with its threads (glibc's malloc arenas) or keep what big
pages took (glibc's mmap threshold)."""

from __future__ import annotations

import ctypes
import sys

_M_ARENA_MAX = -8  # glibc's mallopt() parameters
_M_MMAP_THRESHOLD = -3
_ARENAS = 2
_MMAP_THRESHOLD = 1 << 18


def limit_arenas() -> None:
    """glibc gives threads malloc arenas of their own (up to 8 per CPU), and memory freed in an
    arena stays with the process. A run's threads (serving pip, fetching, probing) made that a
    third of the tool's peak RSS; two arenas shared by all cost no measurable time. glibc also
    raises its mmap threshold to the size of each mapped block freed, so after the first big
    index page (megabytes of text) the next ones come from the arenas and stay there: a fixed
    threshold returns them (the tool at 25 "large" targets: 127 -> 108 MB). Elsewhere (no
    glibc) this does nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_ARENA_MAX, _ARENAS)
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
