"""The process's C heap: fewer malloc arenas, and free pages handed back after busy spells.

A relay passes many frames of a few KiB through bytes objects that glibc's
malloc serves (Python's own allocator takes only objects up to 512 bytes).
glibc gives each thread an arena of its own and hands freed pages in the middle
of a heap back to the system only when asked (``malloc_trim``): after a burst of
traffic the node's RSS stayed megabytes above what it held. Both knobs are
glibc's; elsewhere these functions do nothing. MALLOC_ARENA_MAX in the
environment wins over :func:`limit_malloc_arenas`.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

#: malloc arenas of the process (glibc's default: 8 per core, each thread taking its own)
MALLOC_ARENAS = 2
#: seconds between two trims at most
TRIM_INTERVAL = 5.0
_M_ARENA_MAX = -8  # glibc's mallopt() parameter


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt  # noqa: B018  # glibc has it; musl and others may not
        libc.malloc_trim  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


def limit_malloc_arenas() -> None:
    """Keep the worker threads' allocations in a couple of shared arenas (call before
    the workers start)."""
    if _LIBC is not None and "MALLOC_ARENA_MAX" not in os.environ:
        _LIBC.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


class HeapTrimmer:
    """Hands free heap pages back after traffic, at most every TRIM_INTERVAL seconds."""

    def __init__(self) -> None:
        self.busy = False  # set by the node when it routes frames
        self._next = 0.0
        self.trims = 0

    def tick(self, now: float) -> None:
        """Trim if there was traffic since the last trim and the interval has passed."""
        if not self.busy or now < self._next or _LIBC is None:
            return
        self.busy = False
        self._next = now + TRIM_INTERVAL
        _LIBC.malloc_trim(0)
        self.trims += 1
