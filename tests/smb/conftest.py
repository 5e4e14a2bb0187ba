"""A real Samba smbd for the SMB tests, on a free loopback port, with a populated share.

The session-wide server is read-only for the tests; tests that stop or restart smbd get their
own (``own_samba``). The share's files are written straight into its folder on disk and then
read back through SMB. Everything here skips only when smbd is not installed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.smb.server import SambaServer, smbd_missing

CALL_DAY = "2025-03-07T10:15:00+00:00"
"""Start of the test calls (UTC)."""


@dataclass(frozen=True)
class Share:
    """The populated share of the session's smbd and what is in it."""

    server: SambaServer
    root: Path
    big: str
    """Key of a 3 MB file of random bytes, below ``root``."""

    def url(self, path: str = "", *, query: str = "") -> str:
        """A source URL with the password in it."""
        return self.server.url(path, password=self.server.password, query=query)

    def bytes_of(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


def _write(root: Path, key: str, data: bytes) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def wav(seed: str, size: int = 4000) -> bytes:
    """A WAV-ish file with content unique to ``seed``."""
    body = hashlib.sha256(seed.encode()).digest() * (size // 32 + 1)
    return b"RIFF" + body[: size - 4]


def populate(root: Path) -> str:
    """FreePBX, FusionPBX and flat trees, plus a big random file; returns the big file's key."""
    freepbx = {
        "freepbx/2025/03/07/in-17778611565-13164619284-20250307-101500-1741342500.17.wav": 5000,
        "freepbx/2025/03/07/out-13164619284-201-20250307-101500-1741342500.17.wav": 6000,
        "freepbx/2025/03/07/q-500-13164619284-20250307-101501-1741342500.170.wav": 7000,
        "freepbx/2025/03/06/in-1-2-20250306-230000-1741302000.4.wav": 3000,
        "freepbx/2025/03/07/empty-1-2-20250307-101010-1741342210.9.wav": 44,
    }
    fusion = {
        "fusionpbx/tenant1.example.com/archive/2025/Mar/07/"
        "a1b2c3d4-0000-4000-8000-000000000001.wav": 4000,
        "fusionpbx/tenant2.example.com/archive/2025/Mar/07/"
        "b1b2c3d4-0000-4000-8000-000000000002.mp3": 4500,
    }
    flat = {
        "flat/QSAMPLE-1700000000.12.wav": 2500,
        "flat/deep/er/still/in-9-8-20231114-221320-1700000000.1.wav": 2600,
        "flat/notes-1700000000.1.txt": 10,
    }
    for key, size in {**freepbx, **fusion, **flat}.items():
        _write(root, key, wav(key, size))
    for n in range(3000):  # several QUERY_DIRECTORY replies' worth
        _write(root, f"many/in-17778611565-13164619284-20250307-101500-17413{n:05d}.{n}.wav", b"")
    _write(root, "unicode/città-ünïcødé-日本-1700000000.7.wav", b"RIFF")
    big = "big/random-1741342500.99.wav"
    _write(root, big, os.urandom(3 * 1024 * 1024 + 12345))
    return big


@pytest.fixture(scope="session")
def samba_installed() -> None:
    reason = smbd_missing()
    if reason:
        pytest.skip(f"no real Samba server to test against: {reason}")


@pytest.fixture(scope="session")
def share(samba_installed: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Share]:
    server = SambaServer(tmp_path_factory.mktemp("smbd"))
    big = populate(server.share_dir)
    server.start()
    try:
        yield Share(server, server.share_dir, big)
    finally:
        server.stop()


@pytest.fixture
def own_samba(samba_installed: None, tmp_path: Path) -> Iterator[Share]:
    """A server of the test's own, free to be stopped and restarted."""
    server = SambaServer(tmp_path / "smbd")
    big = populate(server.share_dir)
    server.start()
    try:
        yield Share(server, server.share_dir, big)
    finally:
        server.stop()
