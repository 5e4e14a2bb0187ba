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


_LETTER = re.compile(r"[A-Za-z]")


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
        self._caseless = not callid.isascii() or _LETTER.search(callid) is not None
        self._needle = callid.casefold() if self._caseless else callid
        self.folded_substring = callid.casefold()
        """Every name this accepts holds it once case-folded (``gateway.storage.name_hint``)."""

    def __call__(self, name: str) -> bool:
        if self._needle not in (name.casefold() if self._caseless else name):
            return False
        return audio_format(name) is not None and self._pattern.search(name) is not None


@dataclass(frozen=True)
class Elsewhere:
    """Where a recording found by another gateway lives: the site and its own signed link."""

    site: str
    url: str
    """The site's own link, checked to be on the site's URL."""
    expires: datetime
    name: str
    """The file name the site gave."""


@dataclass(frozen=True)
class Recording:
    """One audio file of a call, found in one source."""

    source: str
    """The id of the source that found it, used to sign links and to fetch the bytes."""
    key: str
    """The key in that source (for a file at another site: its link's path there)."""
    size: int
    mtime: datetime
    format: str
    mime: str
    empty: bool
    elsewhere: Elsewhere | None = None
    """Set for a file at another gateway (federation); ``None`` for this gateway's files."""
    duration: float | None = None
    """Seconds of audio when the source already knows it (a peer's answer); else ``None``."""

    @property
    def name(self) -> str:
        if self.elsewhere is not None:
            return self.elsewhere.name
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
        data: dict[str, object] = {
            "name": self.name,
            "key": self.key,
            "source": self.source,
            "size": self.size,
            "mtime": _iso(self.mtime),
            "type": self.mime,
            "format": self.format,
            "empty": self.empty,
        }
        if self.elsewhere is not None:
            data.update(
                site=self.elsewhere.site,
                url=self.elsewhere.url,
                expires=_iso(self.elsewhere.expires),
            )
        return data


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
