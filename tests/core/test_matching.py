"""Which files belong to a call: whole-token ids, audio extensions, empty recordings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.recordings import CallMatcher, Recording, audio_format
from gateway.storage import Entry

CALL = CallMatcher("1700000000.1")


@pytest.mark.parametrize(
    "name",
    [
        "in-17778611565101-13164619284-20231114-221320-1700000000.1.wav",
        "1700000000.1-in.wav",
        "1700000000.1-out.WAV",
        "1700000000.1_TR.wav",
        "QSAMPLE-1700000000.1.gsm",
        "q-300-555-1700000000.1.MP3",
        "x-1700000000.1.ogg",
        "1700000000.1.opus",
        "1700000000.1.flac",
        "1700000000.1.m4a",
    ],
)
def test_files_of_the_call_match(name: str) -> None:
    assert CALL(name)


@pytest.mark.parametrize(
    "name",
    [
        "in-555-666-20231114-221320-1700000000.12.wav",  # another call, longer id
        "21700000000.1.wav",  # glued to a digit before
        "1700000000.1.5.wav",  # "1700000000.1" is a prefix of another id
        "in-555-1700000000.1.txt",  # not audio
        "1700000000.1.wav.part",
        "1700000000.1",  # no extension
    ],
)
def test_other_files_do_not_match(name: str) -> None:
    assert not CALL(name)


def test_an_id_without_sequence_does_not_match_ids_with_one() -> None:
    assert not CallMatcher("1700000000")("q-1700000000.1.wav")


def test_uuid_ids_match_case_insensitively() -> None:
    uuid = "0b4a6a36-5f5e-4b8e-9d0e-2f1c3a4b5c6d"
    assert CallMatcher(uuid)(f"{uuid.upper()}.wav")
    assert not CallMatcher(uuid[:-1])(f"{uuid}.wav")


def entry(name: str, size: int) -> Entry:
    return Entry(f"2026/03/09/{name}", size, datetime(2026, 3, 9, tzinfo=UTC))


def test_a_wav_header_alone_is_an_empty_recording() -> None:
    assert Recording.from_entry("s", entry("a.wav", 44)).empty
    assert not Recording.from_entry("s", entry("a.wav", 45)).empty
    assert Recording.from_entry("s", entry("a.mp3", 0)).empty


def test_formats_and_mime_types() -> None:
    assert audio_format("a.wav") is not None
    wav = Recording.from_entry("s", entry("a.wav", 100))
    wav49 = Recording.from_entry("s", entry("a.WAV", 100))
    mp3 = Recording.from_entry("s", entry("a.Mp3", 100))
    assert (wav.format, wav.mime) == ("wav", "audio/wav")
    assert (wav49.format, wav49.mime) == ("wav49", "audio/wav")
    assert (mp3.format, mp3.mime) == ("mp3", "audio/mpeg")


@pytest.mark.parametrize(
    ("callid", "name"),
    [
        ("0B4A6A36-5F5E", "0b4a6a36-5f5e.wav"),
        ("0b4a6a36-5f5e", "0B4A6A36-5F5E-in.WAV"),
        ("Abc.1", "q-aBC.1.mp3"),
    ],
)
def test_ids_with_letters_match_in_any_case(callid: str, name: str) -> None:
    assert CallMatcher(callid)(name)
