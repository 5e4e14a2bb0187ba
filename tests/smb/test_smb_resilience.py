"""A restarted, stopped or silent smbd: reconnects, and clear errors instead of hangs."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterator

import pytest

from gateway.errors import Unavailable
from gateway.plugins import load_plugins
from gateway.sourceurl import SourceURL
from gateway.storage import Store
from tests.conftest import free_port
from tests.smb.conftest import Share

HANG_BOUND = 15.0
"""Generous: these tests check that errors come instead of hangs, not how fast."""


def open_store(url: str) -> Store:
    return load_plugins().store_type("smb").factory(SourceURL.parse(url))


def test_restarted_server_is_reconnected_transparently(own_samba: Share) -> None:
    store = open_store(own_samba.url(query="timeout=3"))
    try:
        store.check()
        before = {e.key for e in store.list("freepbx/2025/03/07")}
        own_samba.server.restart()
        # the same store object, no rebuilding: the next requests just work
        assert {e.key for e in store.list("freepbx/2025/03/07")} == before
        own_samba.server.restart()
        assert b"".join(store.open(own_samba.big)) == own_samba.bytes_of(own_samba.big)
        own_samba.server.restart()
        assert store.stat(own_samba.big).size == len(own_samba.bytes_of(own_samba.big))
    finally:
        store.close()


def test_download_survives_a_restart_midway(
    own_samba: Share, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gateway_smb")
    store = open_store(own_samba.url(query="timeout=3"))
    try:
        chunks = iter(store.open(own_samba.big, 7, None))
        first = next(chunks)
        own_samba.server.restart()
        rest = b"".join(chunks)
        assert first + rest == own_samba.bytes_of(own_samba.big)[7:]
        assert "reopening" in caplog.text  # it really lost the connection midway
        assert own_samba.server.password not in caplog.text
    finally:
        store.close()


def test_stopped_server_is_unavailable_quickly_then_back(own_samba: Share) -> None:
    store = open_store(own_samba.url(query="timeout=3"))
    try:
        store.check()
        own_samba.server.stop()
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            list(store.list("flat"))
        assert time.monotonic() - started < HANG_BOUND
        assert store.description in str(caught.value)
        assert own_samba.server.password not in str(caught.value)
        with pytest.raises(Unavailable):
            store.open(own_samba.big)
        own_samba.server.start()
        assert len(list(store.list("flat"))) == 3  # two files and a folder
    finally:
        store.close()


def test_server_never_started_is_unavailable(samba_installed: None) -> None:
    port = free_port()  # nothing listens there
    store = open_store(f"smb://u:secret-pw@127.0.0.1:{port}/recordings?timeout=2")
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable) as caught:
            store.check()
        assert time.monotonic() - started < HANG_BOUND
        assert f"127.0.0.1:{port}" in str(caught.value)
        assert "secret-pw" not in str(caught.value)
    finally:
        store.close()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts TCP connections and then never says a word (a hung server)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def test_silent_server_is_unavailable_within_the_timeout(silent_server: int) -> None:
    store = open_store(f"smb://u:pw@127.0.0.1:{silent_server}/recordings?timeout=2")
    try:
        started = time.monotonic()
        with pytest.raises(Unavailable):
            store.check()
        elapsed = time.monotonic() - started
        assert elapsed < HANG_BOUND
    finally:
        store.close()


def test_frozen_server_gives_unavailable_after_io_timeout_then_recovers(own_samba: Share) -> None:
    huge = own_samba.root / "big" / "huge-1741342500.98.wav"
    huge.write_bytes(os.urandom(20 * 1024 * 1024))  # more than a download reads ahead
    store = open_store(own_samba.url(query="timeout=2&io_timeout=2"))
    try:
        store.check()
        chunks = iter(store.open("big/huge-1741342500.98.wav"))
        next(chunks)
        own_samba.server.pause()
        try:
            started = time.monotonic()
            with pytest.raises(Unavailable, match="answer"):
                list(store.list("flat"))
            assert time.monotonic() - started < HANG_BOUND
            started = time.monotonic()
            with pytest.raises(Unavailable):
                b"".join(chunks)  # a download in progress fails too, instead of hanging
            assert time.monotonic() - started < HANG_BOUND
        finally:
            own_samba.server.resume()
        assert len(list(store.list("flat"))) == 3
        assert b"".join(store.open(own_samba.big)) == own_samba.bytes_of(own_samba.big)
    finally:
        store.close()
