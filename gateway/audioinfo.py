"""A recording's duration, where its header tells it cheaply: WAV, PCM or GSM (wav49).

One small range read (the first ``HEADER_BYTES``) per file; nothing else is ever read. The
parser walks the RIFF chunks itself rather than using the standard library's ``wave``: that
module refuses GSM (format tag 0x31, Asterisk's ``.WAV``) and believes the data size the header
declares, which a recording still being written (or cut short) gets wrong. Here the audio is
``min(declared data size, what the file really holds after the header)``, divided by the byte
rate from the ``fmt`` chunk (exact for PCM and for GSM's fixed 65-byte blocks); the ``fact``
chunk's sample count is used only when the byte rate is missing.

Anything unreadable gives ``None`` ("unknown"): a duration never makes a search fail.
"""

from __future__ import annotations

import logging
import struct

from gateway.recordings import Recording
from gateway.storage import Store

log = logging.getLogger("gateway.audioinfo")

HEADER_BYTES = 4096
"""How much of a file is read to find its duration."""
WAV_FORMATS = frozenset({"wav", "wav49"})
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


def wav_duration(header: bytes, size: int) -> float | None:
    """Seconds of audio in a WAV file of ``size`` bytes that starts with ``header``."""
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return None
    byte_rate = sample_rate = 0
    samples: int | None = None
    have_fmt = False
    pos = 12
    while pos + 8 <= len(header):
        chunk_id = header[pos : pos + 4]
        (chunk_size,) = struct.unpack_from("<I", header, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt " and body + 16 <= len(header):
            _, _, sample_rate, byte_rate = struct.unpack_from("<HHII", header, body)
            have_fmt = True
        elif chunk_id == b"fact" and body + 4 <= len(header):
            (samples,) = struct.unpack_from("<I", header, body)
        elif chunk_id == b"data":
            if not have_fmt:
                return None
            available = max(0, size - body)
            declared = available if chunk_size in _UNKNOWN_SIZES else chunk_size
            data_size = min(declared, available)
            if byte_rate > 0:
                return data_size / byte_rate
            if samples and sample_rate > 0:
                return samples / sample_rate
            return None
        pos = body + chunk_size + (chunk_size & 1)  # chunks are padded to an even size
    return None


def probe_duration(store: Store, recording: Recording) -> float | None:
    """The duration of ``recording`` from one read of its header; ``None`` when unknown."""
    if recording.format not in WAV_FORMATS or recording.size < 12:
        return None
    try:
        chunks = store.open(recording.key, 0, min(HEADER_BYTES, recording.size))
        data = bytearray()
        try:
            for chunk in chunks:
                data += chunk
                if len(data) >= HEADER_BYTES:
                    break
        finally:
            chunks.close()
        return wav_duration(bytes(data[:HEADER_BYTES]), recording.size)
    except Exception as exc:  # a duration is a nicety: never fail the search for it
        log.debug("no duration for %s: %s", recording.key, type(exc).__name__)
        return None


def minutes_seconds(seconds: float | None) -> str:
    """``72.4`` -> ``"1:12"`` (QueueMetrics' way); ``None`` -> ``"-"``."""
    if seconds is None:
        return "-"
    total = round(seconds)
    return f"{total // 60}:{total % 60:02d}"
