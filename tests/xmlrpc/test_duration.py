"""Durations from WAV headers (PCM and GSM), and never an error instead of one."""

from __future__ import annotations

import io
import struct
import wave
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.audioinfo import minutes_seconds, probe_duration, wav_duration
from gateway.plugins import load_plugins
from gateway.query import Query
from gateway.recordings import Recording
from gateway.sources import open_sources
from gateway_local import LocalStore
from tests.xmlrpc.conftest import wav49


def pcm(seconds: float, *, rate: int = 8000, channels: int = 1, width: int = 2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(b"\x00" * int(seconds * rate) * channels * width)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "seconds"),
    [
        (pcm(6), 6.0),
        (pcm(2.5, rate=44100, channels=2), 2.5),
        (pcm(3, width=1), 3.0),
        (pcm(0), 0.0),
        (wav49(250), 10.0),
        (wav49(0), 0.0),
    ],
)
def test_durations(data: bytes, seconds: float) -> None:
    assert wav_duration(data[:4096], len(data)) == pytest.approx(seconds)


def test_header_that_declares_no_size_or_too_much() -> None:
    # a recording still being written: data size 0 (or -1) in the header; one cut short
    for declared in (0, 0xFFFFFFFF, 10**9):
        data = wav49(100, declared=declared)
        assert wav_duration(data[:4096], len(data)) == pytest.approx(4.0)


def test_odd_chunk_before_data_is_skipped_with_its_pad_byte() -> None:
    plain = pcm(1)
    extra = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\0"
    data = plain[:36] + extra + plain[36:]
    assert wav_duration(data, len(data)) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "header",
    [b"", b"RIFF", b"ID3\x03" + b"\0" * 60, b"RIFF\0\0\0\0WAVEdata\0\0\0\0", b"RIFF\0\0\0\0AVI "],
)
def test_unreadable_headers_are_unknown(header: bytes) -> None:
    assert wav_duration(header, 1000) is None


def recording(key: str, size: int, fmt: str = "wav") -> Recording:
    return Recording("s", key, size, datetime.now(UTC), fmt, "audio/wav", False)


def test_probe_reads_only_the_header(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(pcm(30))  # 480 kB
    store = LocalStore(tmp_path)
    assert probe_duration(store, recording("a.wav", 480044)) == pytest.approx(30.0)


def test_probe_never_fails(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    (tmp_path / "b.mp3").write_bytes(b"ID3" * 100)
    assert probe_duration(store, recording("b.mp3", 300, "mp3")) is None  # not a WAV
    assert probe_duration(store, recording("gone.wav", 5000)) is None  # vanished since listing
    assert probe_duration(store, recording("../x.wav", 5000)) is None  # refused key


@pytest.mark.parametrize(
    ("seconds", "text"), [(72.4, "1:12"), (0, "0:00"), (59.6, "1:00"), (3725, "62:05"), (None, "-")]
)
def test_minutes_seconds(seconds: float | None, text: str) -> None:
    assert minutes_seconds(seconds) == text


def test_a_header_is_read_once_per_version_of_the_file(tmp_path: Path) -> None:
    """Every search for a call asks its durations: the header is read again only when the
    file changed (a recording still being written grows)."""
    day = tmp_path / "2026/03/09"
    day.mkdir(parents=True)
    (day / "in-1-2-1773047700.1.wav").write_bytes(pcm(2))
    [source] = open_sources(str(tmp_path), load_plugins(), layout="freepbx")
    store = source.store  # type: ignore[attr-defined]
    opened: list[str] = []
    real_open = store.open

    def counting_open(key: str, start: int = 0, end: int | None = None) -> object:
        opened.append(key)
        return real_open(key, start, end)

    store.open = counting_open

    def durations() -> list[float | None]:
        found = source.search(
            Query("1773047700.1"), [datetime(2026, 3, 9).date()], via=[], deadline=0
        )
        return [source.duration(r) for r in found.recordings]

    assert durations() == [2.0]
    assert durations() == [2.0]
    assert len(opened) == 1
    (day / "in-1-2-1773047700.1.wav").write_bytes(pcm(5))
    assert durations() == [5.0]
    assert len(opened) == 2
