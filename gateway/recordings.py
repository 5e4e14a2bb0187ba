"""What a recording is, which files count as audio, and how a call id matches a file name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gateway.storage import Entry


@dataclass(frozen=True)
class AudioFormat:
    format: str
    """Short name of the encoding: ``wav``, ``wav49``, ``mp3``..."""
    mime: str
    header_size: int = 0
    """A file of at most this many bytes holds no audio (a WAV header alone is 44 bytes)."""


_FORMATS = {
    "wav": AudioFormat("wav", "audio/wav", 44),
    "gsm": AudioFormat("gsm", "audio/x-gsm"),
    "mp3": AudioFormat("mp3", "audio/mpeg"),
    "ogg": AudioFormat("ogg", "audio/ogg"),
    "opus": AudioFormat("opus", "audio/ogg"),
    "flac": AudioFormat("flac", "audio/flac"),
    "m4a": AudioFormat("m4a", "audio/mp4"),
}
# Asterisk writes GSM-in-WAV ("wav49") with an upper-case extension; browsers cannot play it,
# but it is still the call's recording and QueueMetrics should hear about it.
_WAV49 = AudioFormat("wav49", "audio/wav", 60)


def audio_format(name: str) -> AudioFormat | None:
    """Return the audio format of a file name, or ``None`` when it is not an audio file."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return None
    if ext == "WAV":
        return _WAV49
    return _FORMATS.get(ext.lower())


def _token_pattern(callid: str) -> re.Pattern[str]:
    # A whole token: not glued to letters or digits on either side, and not followed by
    # ".<digit>" (so "1700000000.1" does not match "1700000000.12" or "1700000000.1.5",
    # and "1700000000" does not match "1700000000.1").
    return re.compile(
        r"(?<![0-9A-Za-z])" + re.escape(callid) + r"(?![0-9A-Za-z]|\.[0-9])", re.IGNORECASE
    )


class CallMatcher:
    """Tells whether a file name belongs to a call: an audio file holding the id as a token."""

    def __init__(self, callid: str) -> None:
        self.callid = callid
        self._pattern = _token_pattern(callid)
        # A plain substring test first: it rejects almost every name of a big folder in C.
        # Exact for ids without letters (Asterisk's epoch.seq), case-folded for the others.
        self._caseless = not callid.isascii() or any(c.isalpha() for c in callid)
        self._needle = callid.casefold() if self._caseless else callid

    def __call__(self, name: str) -> bool:
        if self._needle not in (name.casefold() if self._caseless else name):
            return False
        return audio_format(name) is not None and self._pattern.search(name) is not None


@dataclass(frozen=True)
class Recording:
    """One audio file of a call, found in one source."""

    source: str
    """The source's id (its safe description), used to sign links and to fetch the bytes."""
    key: str
    size: int
    mtime: datetime
    format: str
    mime: str
    empty: bool

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @classmethod
    def from_entry(cls, source: str, entry: Entry) -> Recording:
        fmt = audio_format(entry.name)
        if fmt is None:
            raise ValueError(f"not an audio file: {entry.name}")
        return cls(
            source=source,
            key=entry.key,
            size=entry.size,
            mtime=entry.mtime,
            format=fmt.format,
            mime=fmt.mime,
            empty=entry.size <= fmt.header_size,
        )

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "key": self.key,
            "source": self.source,
            "size": self.size,
            "mtime": self.mtime.isoformat().replace("+00:00", "Z"),
            "type": self.mime,
            "format": self.format,
            "empty": self.empty,
        }
