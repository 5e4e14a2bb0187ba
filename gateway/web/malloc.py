"""glibc's malloc, set for a long-running threaded server (``gateway serve``).

glibc gives each thread that finds the arenas busy an arena of its own, up to 8 per core, and
keeps what is freed in each for that arena's next allocations. With 32 worker threads moving
download chunks and SMB reads, 16 arenas on 2 cores held about 150 MiB of freed memory in the
soak of docs/performance.md (220-240 MiB resident); with 2 arenas, 130-145 MiB and the same
throughput (Python's lock means the threads seldom contend for an arena anyway). The limit
applies to the arenas made after it: ``serve`` sets it before the worker threads start. A
``MALLOC_ARENA_MAX`` in the environment is the operator's choice and wins.
"""

from __future__ import annotations

import ctypes
import os

ARENA_MAX = 2
_M_ARENA_MAX = -8  # glibc's malloc.h


def limit_malloc_arenas(arena_max: int = ARENA_MAX) -> bool:
    """Limit glibc's malloc to ``arena_max`` arenas; ``False`` when the environment sets the
    limit already or the C library has no such setting (musl, macOS)."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arena_max))
