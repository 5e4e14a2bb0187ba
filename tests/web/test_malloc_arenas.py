"""``gateway serve`` limits glibc's malloc arenas: freed memory of 32 worker threads is not
kept in 16 arenas (the soak's resident memory, docs/performance.md)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Starts threads that allocate the way downloads do (small objects and 200 KB buffers), then
# prints how many heaps (arenas) glibc's malloc_info reports.
COUNT_ARENAS = """
import ctypes, os, sys, tempfile, threading
from gateway.web.malloc import limit_malloc_arenas
libc = ctypes.CDLL(None)
if sys.argv[1] == "limit":
    limit_malloc_arenas()
def work(barrier):
    barrier.wait()
    for _ in range(300):
        kept = [bytearray(300) for _ in range(50)], bytes(200_000)
barrier = threading.Barrier(32)
threads = [threading.Thread(target=work, args=(barrier,)) for _ in range(32)]
for t in threads: t.start()
for t in threads: t.join()
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = os.path.join(tempfile.mkdtemp(), "info.xml")
info = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, info)
libc.fclose(info)
print(open(path).read().count("<heap "))
"""


def arenas(mode: str, **env: str) -> int:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    done = subprocess.run(
        [sys.executable, "-c", COUNT_ARENAS, mode],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
        check=True,
    )
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_worker_threads_share_two_arenas() -> None:
    assert arenas("limit") <= 2
    assert arenas("default") > 2  # what the limit prevents


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_operators_setting_wins() -> None:
    assert arenas("limit", MALLOC_ARENA_MAX="4") > 2
