"""glibc malloc settings for a long-running server: fewer arenas, freed memory handed back.

glibc gives threads malloc arenas of their own (up to 8 per core), and an arena keeps the memory
freed in it. Cairn's worker threads (world loading, placement, the journal writer) allocate large
numpy temporaries between long-lived objects, so with the default arenas the server's RSS grew
about twice as fast as its live data (docs/performance.md, "What the profiles showed", item 4).

Both functions do nothing, and return False, where the C library is not glibc (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping

_M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h

#: Arenas when the environment does not set MALLOC_ARENA_MAX: the main thread's and one more.
DEFAULT_ARENAS = 2


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def limit_arenas(env: Mapping[str, str] = os.environ) -> bool:
    """Cap the malloc arenas at `DEFAULT_ARENAS`, unless `MALLOC_ARENA_MAX` is set (glibc read it at
    start, and the operator's choice stands). Call it before starting threads: arenas already made stay."""
    if "MALLOC_ARENA_MAX" in env:
        return False
    libc = _libc()
    return libc is not None and libc.mallopt(_M_ARENA_MAX, DEFAULT_ARENAS) == 1


def trim() -> bool:
    """Hand the free memory of every arena back to the system (`malloc_trim(0)`): after start, where
    loading the worlds and replaying the journal leave much of it. Takes milliseconds."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
