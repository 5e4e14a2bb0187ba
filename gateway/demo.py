"""A small, realistic demo archive: FreePBX layout, 16-bit PCM WAV, several days of calls.

Deterministic for a given end day and time zone, so tests and the README can name its calls.
"""

from __future__ import annotations

import io
import math
import os
import random
import wave
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

SAMPLE_RATE = 8000


@dataclass(frozen=True)
class DemoCall:
    callid: str
    start: datetime
    files: tuple[str, ...]
    """Keys of the call's recordings, relative to the archive root."""


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


def write_demo(root: Path, *, end: date, days: int = 3, tz: ZoneInfo) -> list[DemoCall]:
    """Write the archive below ``root`` and return its calls."""
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
