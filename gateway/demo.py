"""A small, realistic demo archive: 16-bit PCM WAV, several days of calls, filed the way
FreePBX (``YYYY/MM/DD/<name>-<EPOCH.SEQ>.wav``) or FusionPBX
(``<domain>/archive/YYYY/Mon/DD/<uuid>.wav``, two domains) files them.

Deterministic for a given layout, end day, number of days and time zone, so tests and the
README can name its calls.
"""

from __future__ import annotations

import io
import math
import os
import random
import uuid
import wave
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from gateway.placeholders import MONTHS

SAMPLE_RATE = 8000
DemoLayout = Literal["freepbx", "fusionpbx"]
FUSION_DOMAINS = ("pbx1.example.com", "pbx2.example.com")
"""The FusionPBX demo's tenants: each domain files its calls below its own folder."""


@dataclass(frozen=True)
class DemoCall:
    callid: str
    start: datetime
    files: tuple[str, ...]
    """Keys of the call's recordings, relative to the archive root."""
    tenant: str | None = None
    """The FusionPBX domain the call belongs to (``--tenant``); ``None`` in a FreePBX archive."""


def tone(seconds: float, frequency: float) -> bytes:
    """A mono 16-bit PCM WAV of a tone whose pitch steps up every second (so seeking is
    audible)."""
    frames = bytearray()
    for i in range(int(seconds * SAMPLE_RATE)):
        step = 1 + (i // SAMPLE_RATE) % 4 * 0.25
        value = int(8000 * math.sin(2 * math.pi * frequency * step * i / SAMPLE_RATE))
        frames += value.to_bytes(2, "little", signed=True)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(bytes(frames))
    return out.getvalue()


EMPTY_WAV = tone(0, 440)  # a 44-byte header and no audio: a call where nothing was recorded


def write_demo(
    root: Path, *, end: date, days: int = 3, tz: ZoneInfo, layout: DemoLayout = "freepbx"
) -> list[DemoCall]:
    """Write the archive below ``root`` in ``layout`` and return its calls, oldest first.

    Each recording's mtime is the call's start. The last day ends with a call at 23:57-23:58,
    found from a timestamp after midnight only with the look-back."""
    if layout == "fusionpbx":
        return _write_fusionpbx(root, end=end, days=days, tz=tz)
    return _write_freepbx(root, end=end, days=days, tz=tz)


def _write_freepbx(root: Path, *, end: date, days: int, tz: ZoneInfo) -> list[DemoCall]:
    """Four calls a day (queue, in/out legs, transferred, empty), Asterisk ``EPOCH.SEQ`` ids."""
    rng = random.Random(f"{end.isoformat()}-{days}")
    calls: list[DemoCall] = []
    seq = 100
    for offset in range(days - 1, -1, -1):
        day = end - timedelta(days=offset)
        moments = [time(9, 15), time(11, 2, 30), time(14, 47, 5), time(16, 30, 45)]
        if offset == 0:
            moments.append(time(23, 58, 10))  # near midnight: found only with the look-back
        for n, moment in enumerate(moments):
            start = datetime.combine(day, moment, tz)
            seq += 1
            callid = f"{int(start.timestamp())}.{seq}"
            stamp = start.strftime("%Y%m%d-%H%M%S")
            caller = f"39{rng.randrange(10**9, 10**10)}"
            folder = start.strftime("%Y/%m/%d")
            kind = n % 4
            if kind == 0:  # a queue call, one mixed file
                names = [f"q-300-{caller}-{stamp}-{callid}.wav"]
            elif kind == 1:  # separate legs, as Monitor() writes them
                names = [f"{callid}-in.wav", f"{callid}-out.wav"]
            elif kind == 2:  # answered, then transferred: a second file for the transfer leg
                names = [f"in-200-{caller}-{stamp}-{callid}.wav", f"{callid}_TR.wav"]
            else:  # an outbound call where nothing was recorded: an empty WAV
                names = [f"out-{caller}-201-{stamp}-{callid}.wav"]
            keys = []
            for i, name in enumerate(names):
                path = root / folder / name
                path.parent.mkdir(parents=True, exist_ok=True)
                audio = EMPTY_WAV if kind == 3 else tone(6 + 2 * i + n, 330 + 55 * n + 110 * i)
                path.write_bytes(audio)
                os.utime(path, (start.timestamp(), start.timestamp()))
                keys.append(f"{folder}/{name}")
            calls.append(DemoCall(callid, start, tuple(keys)))
    return calls


def _write_fusionpbx(root: Path, *, end: date, days: int, tz: ZoneInfo) -> list[DemoCall]:
    """Calls of two domains, as FusionPBX's ``record_path``/``record_name`` file them:
    ``<domain>/archive/%Y/%b/%d/<uuid>.wav``, one file per call (FreeSWITCH's record_session
    appends a transferred call to the same file). Call ids are random UUIDs from a generator
    seeded by the end day and the number of days."""
    rng = random.Random(f"fusionpbx-{end.isoformat()}-{days}")
    pbx1, pbx2 = FUSION_DOMAINS
    calls: list[DemoCall] = []
    for offset in range(days - 1, -1, -1):
        day = end - timedelta(days=offset)
        moments = [
            (time(9, 5), pbx1),
            (time(10, 30, 40), pbx2),
            (time(12, 40, 20), pbx1),
            (time(15, 10, 15), pbx2),
            (time(17, 20, 5), pbx1),
        ]
        if offset == 0:
            moments.append((time(23, 57, 30), pbx2))  # near midnight: needs the look-back
        for n, (moment, domain) in enumerate(moments):
            start = datetime.combine(day, moment, tz)
            callid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            folder = f"{domain}/archive/{start.year:04d}/{MONTHS[start.month - 1]}/{start.day:02d}"
            path = root / folder / f"{callid}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            # one call a day was missed: its recording is only a WAV header
            path.write_bytes(EMPTY_WAV if n == 3 else tone(5 + n, 392 + 49 * n))
            os.utime(path, (start.timestamp(), start.timestamp()))
            calls.append(DemoCall(callid, start, (f"{folder}/{path.name}",), domain))
    return calls
