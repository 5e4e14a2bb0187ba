"""Helpers shared by every test folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

GATEWAY = [sys.executable, "-m", "gateway"]


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
