"""Helpers shared by every test folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

GATEWAY = [sys.executable, "-m", "gateway"]

T = TypeVar("T")


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_gateway(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60, input: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run the real ``gateway`` command line and capture its output."""
    full_env = {**os.environ, "TZ": "UTC", **(env or {})}
    return subprocess.run(
        [*GATEWAY, *args], capture_output=True, env=full_env, timeout=timeout, input=input
    )


@pytest.fixture
def gateway() -> Callable[..., subprocess.CompletedProcess[bytes]]:
    return run_gateway


def write(path: Path, data: bytes = b"RIFF....WAVEfmt " + b"\0" * 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.05,
    *,
    what: str | Callable[[], str] | None = None,
) -> T:
    """Poll ``predicate`` until it returns something true, and return that.

    For tests that wait for something they can observe (a log line, a server being up, a
    reload applied, a process gone) instead of sleeping a fixed time. An exception raised by
    ``predicate`` propagates at once (a predicate can so give up early, e.g. when the process
    it waits for has died). On timeout, an ``AssertionError`` names ``what`` was awaited
    (a callable is called then, so it can describe the state at that moment).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            described = what() if callable(what) else what
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for "
                f"{described or getattr(predicate, '__qualname__', repr(predicate))}"
            )
        time.sleep(interval)


class FakeClock:
    """A clock to inject (``LinkSigner(keys, clock=FakeClock())``) that only moves when told,
    so that expiry is tested by advancing it instead of sleeping."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now
        """Epoch seconds."""

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
