"""A demo archive (with a GSM wav49 call) served by a real ``gateway serve``."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from tests.web.conftest import TOKEN, Archive, Gateway, make_archive, serve_args

WAV49_CALLID = "1773000000.949"
WAV49_KEY = "2026/03/08/q-300-200-20260308-200000-1773000000.949.WAV"
WAV49_BLOCKS = 1875  # 65-byte GSM blocks of 40 ms each: 75 s


def wav49(blocks: int, *, declared: int | None = None) -> bytes:
    """A GSM-in-WAV file as Asterisk writes it (format 0x31, fact chunk, 65-byte blocks)."""
    data = b"\x00" * (65 * blocks)
    fmt = struct.pack("<HHIIHHHH", 0x31, 1, 8000, 1625, 65, 0, 2, 320)
    fact = struct.pack("<I", 320 * blocks)
    size = len(data) if declared is None else declared
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<I", 4)
        + fact
        + b"data"
        + struct.pack("<I", size)
        + data
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    archive = make_archive(tmp_path_factory.mktemp("archive"))
    path = archive.root / WAV49_KEY
    path.write_bytes(wav49(WAV49_BLOCKS))
    return archive


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, archive: Archive) -> Iterator[Gateway]:
    log = tmp_path_factory.mktemp("log") / "gateway.log"
    gateway = Gateway(serve_args(archive), log)
    yield gateway
    gateway.stop()


def rpc_url(gw: Gateway, path: str = "/xmlrpc", token: str = TOKEN) -> str:
    return f"{gw.url}{path}?token={token}"
