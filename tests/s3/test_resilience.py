"""Dead, silent and restarted S3 servers: clear errors within a bound, then recovery.

The time bounds here are generous hang checks (the SDK's defaults would retry for minutes),
not speed assertions.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway.errors import Unavailable
from tests.conftest import wait_until
from tests.s3.conftest import S3Env, put_objects
from tests.s3.server import SeaweedServer

HANG_BOUND = 45.0  # seconds; the store's own bound is a few seconds
DATA = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture(scope="module")
def own_server(s3env: S3Env) -> Iterator[SeaweedServer]:
    """A server of this module's own, to stop and restart (the session's stays up)."""
    if s3env.server is None:
        pytest.skip("stopping an external S3 endpoint is not possible")
    server = SeaweedServer()
    server.start()
    admin = server.boto3_client()
    admin.create_bucket(Bucket="resilience")
    put_objects(admin, "resilience", [("p/2026/03/09/in-1-2-3-4-1773047410.1.wav", DATA)])
    admin.close()
    yield server
    server.cleanup()


def env_for(server: SeaweedServer) -> S3Env:
    return S3Env(server.endpoint, server.credentials, "us-east-1", server)


KEY = "2026/03/09/in-1-2-3-4-1773047410.1.wav"


def bounded(action: Callable[[], Any]) -> tuple[Unavailable, float]:
    started = time.monotonic()
    with pytest.raises(Unavailable) as info:
        action()
    return info.value, time.monotonic() - started


def test_stopped_server_is_unavailable_quickly_and_restart_recovers(
    own_server: SeaweedServer,
) -> None:
    store = env_for(own_server).store("resilience", "p")
    try:
        store.check()
        assert b"".join(store.open(KEY, 10, 20)) == DATA[10:20]
        own_server.stop()
        for action in (
            store.check,
            lambda: list(store.list("2026/03/09")),
            lambda: store.stat(KEY),
            lambda: store.open(KEY),
        ):
            error, took = bounded(action)
            assert took < HANG_BOUND
            assert store.description in str(error)
            assert own_server.credentials.secret_key not in str(error)
        own_server.start()

        def reads() -> bool:
            try:
                return b"".join(store.open(KEY)) == DATA
            except Unavailable:  # SeaweedFS answers S3 a moment before its volume server
                return False

        # the very same store object (and client) works again
        store.check()
        assert [e.key for e in store.list("2026/03/09")] == [KEY]
        wait_until(reads, 30, what="the restarted server to serve the file again")
    finally:
        store.close()


class SilentServer:
    """A real TCP listener that accepts connections and never answers (a hung endpoint)."""

    def __init__(self, reply: bytes = b"") -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.conns: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.conns.append(conn)
            if self.reply:
                conn.recv(65536)
                conn.sendall(self.reply)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for conn in self.conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


def test_silent_endpoint_times_out(s3env: S3Env, silent: SilentServer) -> None:
    env = S3Env(f"http://127.0.0.1:{silent.port}", s3env.credentials, "us-east-1", None)
    store = env.store("bucket", "p", read_timeout="1")
    try:
        error, took = bounded(store.check)
        assert took < HANG_BOUND
        assert "did not answer in time" in str(error)
        assert store.description in str(error)
    finally:
        store.close()


def test_download_stalling_mid_stream_is_unavailable(s3env: S3Env) -> None:
    head = (
        b"HTTP/1.1 206 Partial Content\r\nContent-Length: 1000000\r\n"
        b'Content-Range: bytes 0-999999/1000000\r\nETag: "x"\r\n\r\n' + b"a" * 1000
    )
    stalling = SilentServer(reply=head)
    env = S3Env(f"http://127.0.0.1:{stalling.port}", s3env.credentials, "us-east-1", None)
    store = env.store("bucket", "p", read_timeout="1")
    try:
        chunks = store.open(KEY, 0, 1_000_000)

        def drain() -> None:
            for _ in chunks:
                pass

        error, took = bounded(drain)
        assert took < HANG_BOUND
        assert store.description in str(error)
    finally:
        store.close()
        stalling.close()
