"""Why a search found what it found: the folders each source listed, and the near misses.

``gateway search --explain`` and an administrator's ``explain=1`` on ``/search/`` hand an
``Explanation`` to ``gateway.search.Searcher.find``; the searcher and the sources fill it in
while they search (a normal search carries none and pays nothing for it):

- per source (``SourceTrace``): the days searched, how long it took, how many recordings it
  found, its error; a source at another site says only how long the peer took and what it
  answered;
- per folder a store source listed (``FolderTrace``): how long the listing took, how many names
  it held, whether it was missing, its error, and its near misses;
- a near miss (``NearMiss``) is a name in a listed folder that is not one of the call's
  recordings but looks related (``Clues``): it holds the call id (not as a whole token, or not
  as an audio file), a long part of it, or a time within ``NEAR_MINUTES`` of the call's start;
  or it is the call's own file, in a folder the layout files no call in, or beyond the search
  window (see ``gateway.sources.StoreSource.explain``, which lists the day on either side of the
  window when nothing was found). At most ``NEAR_MISSES_PER_FOLDER`` are kept per folder.

The explanation names storage keys: only the administrator (the shared token) may ask for it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.recordings import CallMatcher, audio_format
from gateway.storage import Entry, NameFilter

NEAR_MINUTES = 10
"""A name whose time is this close to the call's start is a near miss."""
NEAR_MISSES_PER_FOLDER = 20
"""Near misses kept per folder listed (the others are only counted)."""
NEAR_BY_TIME_PER_FOLDER = 10
"""Of those, at most this many found by their time alone (a busy folder has many calls a few
minutes apart; the names that hold the call id must not be crowded out)."""
PART_LENGTH = 6
"""Parts of the call id at least this long are looked for in names (``1773054150`` of
``1773054150.110``; not ``110``, which half an archive's names hold)."""

_PARTS = re.compile(r"[^0-9A-Za-z]+")
_EPOCH = re.compile(r"(?<![0-9])(1[0-9]{9})(?![0-9])")
_STAMP = re.compile(
    r"(?<![0-9])(20[0-9]{2})([01][0-9])([0-3][0-9])[-_T]?([0-2][0-9])([0-5][0-9])([0-5][0-9])(?![0-9])"
)


@dataclass(frozen=True)
class NearMiss:
    """A name in a listed folder that is not one of the call's recordings, and why it is shown."""

    key: str
    why: str

    def to_json(self) -> dict[str, object]:
        return {"key": self.key, "why": self.why}


class Clues:
    """What makes a name a near miss for one call (see the module docstring). Thread-safe."""

    def __init__(self, callid: str, start: datetime | None, timezone: ZoneInfo) -> None:
        self._folded = callid.casefold()
        self._parts = [p for p in _PARTS.split(self._folded) if len(p) >= PART_LENGTH]
        self._start = start
        self._timezone = timezone

    def why(self, name: str) -> tuple[str, bool] | None:
        """Why ``name`` (which the call's matcher refused) is a near miss, and whether by its
        time alone; ``None`` when it is not one."""
        folded = name.casefold()
        if self._folded in folded:
            if audio_format(name) is None:
                return "holds the call id, but is not an audio file", False
            return "holds the call id, but glued to other letters or digits", False
        for part in self._parts:
            if part in folded:
                return f"holds {part!r} of the call id" + self.time_note(name), False
        if self._start is not None:
            for moment in self._times(name):
                if abs(moment - self._start) <= timedelta(minutes=NEAR_MINUTES):
                    return self.time_note(name, always=True).removeprefix("; "), True
        return None

    def time_note(self, name: str, *, always: bool = False) -> str:
        """``"; its name's time ... is ... the call's start"`` when the name holds a time that
        differs from the call's start (or ``always``), else ``""``: a whole number of hours
        apart points at a time zone."""
        if self._start is None:
            return ""
        for moment in self._times(name):
            delta = moment - self._start
            if always or abs(delta) >= timedelta(minutes=1):
                local = moment.astimezone(self._timezone).strftime("%Y-%m-%d %H:%M:%S")
                start = self._start.astimezone(self._timezone).strftime("%Y-%m-%d %H:%M:%S")
                return (
                    f"; its name's time {local} is {_delta_text(delta)} the call's start "
                    f"{start} ({self._timezone.key})"
                )
            return ""
        return ""

    def _times(self, name: str) -> Iterator[datetime]:
        """The times a name holds: ``YYYYMMDD-HHMMSS`` first (the PBX's wall clock, read in
        the gateway's time zone: where a wrong zone shows), then epoch seconds (absolute)."""
        for m in _STAMP.finditer(name):
            try:
                year, month, day, hour, minute, second = (int(g) for g in m.groups())
                wall = datetime(year, month, day, hour, minute, second)
            except ValueError:
                continue
            yield wall.replace(tzinfo=self._timezone)
        for m in _EPOCH.finditer(name):
            yield datetime.fromtimestamp(int(m.group(1)), UTC)


def _delta_text(delta: timedelta) -> str:
    seconds = int(abs(delta).total_seconds())
    if seconds < 60:
        return "the same as"
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    text = f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
    return f"{text} {'after' if delta > timedelta(0) else 'before'}"


@dataclass
class FolderTrace:
    """One folder a store source listed for the search (or, ``outside``, only to explain)."""

    folder: str
    recursive: bool
    clues: Clues = field(repr=False)
    outside: bool = False
    """Beyond the search window: listed for the explanation only, its matches not answered."""
    seconds: float = 0.0
    names: int = 0
    """File names the store handed to the name filter."""
    missing: bool = False
    error: str | None = None
    near_misses: list[NearMiss] = field(default_factory=list)
    more_near_misses: int = 0
    """Near misses beyond ``NEAR_MISSES_PER_FOLDER``: counted, not kept."""
    _started: float = field(default_factory=time.monotonic, repr=False)
    _pending: dict[str, str] = field(default_factory=dict, repr=False)
    _by_time: int = field(default=0, repr=False)

    def filter(self, match: CallMatcher) -> NameFilter:
        """The name filter to list this folder with: ``match``'s answer, except that it lets
        near misses through too (so the store yields their entries, key and all, and fetches
        sizes only for them); the search loop hands those to ``near``."""
        return _Watch(match, self)

    def near(self, entry: Entry, why: str | None = None) -> None:
        """Record a listed entry the search did not take: ``why``, else the reason the name
        filter gave when it let it through."""
        reason = self._pending.pop(entry.name, None)
        if why is not None:
            reason = why + self.clues.time_note(entry.name)
        if reason is None:
            return
        if len(self.near_misses) >= NEAR_MISSES_PER_FOLDER:
            self.more_near_misses += 1
            return
        self.near_misses.append(NearMiss(entry.key, reason))

    def done(self) -> None:
        self.seconds = time.monotonic() - self._started

    def to_json(self) -> dict[str, object]:
        return {
            "folder": self.folder,
            "recursive": self.recursive,
            "outside_window": self.outside,
            "ms": round(self.seconds * 1000, 1),
            "names": self.names,
            "missing": self.missing,
            "error": self.error,
            "near_misses": [n.to_json() for n in self.near_misses],
            "more_near_misses": self.more_near_misses,
        }

    def lines(self) -> Iterator[str]:
        where = (self.folder or "(the root)") + (" and below" if self.recursive else "")
        if self.outside:
            where += " (outside the search window, listed to explain)"
        took = f"{self.seconds * 1000:.1f} ms"
        if self.error is not None:
            yield f"  listed {where}: ERROR {self.error} ({took})"
        elif self.missing:
            yield f"  listed {where}: does not exist ({took})"
        else:
            yield f"  listed {where}: {self.names} names in {took}"
        for near in self.near_misses:
            yield f"    near miss: {near.key}: {near.why}"
        if self.more_near_misses:
            yield f"    ... and {self.more_near_misses} more near misses"


class _Watch:
    """A name filter that counts the names it sees and lets near misses through as well."""

    def __init__(self, match: CallMatcher, trace: FolderTrace) -> None:
        self._match = match
        self._trace = trace

    def __call__(self, name: str) -> bool:
        trace = self._trace
        trace.names += 1
        if self._match(name):
            return True
        found = trace.clues.why(name)
        if found is None:
            return False
        why, by_time = found
        full = len(trace.near_misses) + len(trace._pending) >= NEAR_MISSES_PER_FOLDER
        if full or (by_time and trace._by_time >= NEAR_BY_TIME_PER_FOLDER):
            trace.more_near_misses += 1
            return False
        trace._by_time += by_time
        trace._pending[name] = why
        return True


@dataclass
class SourceTrace:
    """One source searched (a source searched twice, narrowed then everywhere, has two)."""

    source: str
    """The source's id."""
    label: str
    days: list[date]
    """The days searched; empty: everywhere."""
    clues: Clues = field(repr=False)
    federated: bool = False
    seconds: float = 0.0
    results: int = 0
    error: str | None = None
    peer_errors: list[str] = field(default_factory=list)
    folders: list[FolderTrace] = field(default_factory=list)

    def folder(self, folder: str, recursive: bool, *, outside: bool = False) -> FolderTrace:
        """Start the trace of one folder listing (``done`` ends it)."""
        trace = FolderTrace(folder, recursive, self.clues, outside)
        self.folders.append(trace)
        return trace

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "days": [d.isoformat() for d in self.days],
            "federated": self.federated,
            "ms": round(self.seconds * 1000, 1),
            "results": self.results,
            "error": self.error,
            "peer_errors": self.peer_errors,
            "folders": [f.to_json() for f in self.folders],
        }

    def lines(self) -> Iterator[str]:
        took = f"{self.seconds * 1000:.0f} ms"
        if self.federated:
            yield f"asked peer {self.label}: {self.results} results in {took}" + (
                f": {self.error}" if self.error else ""
            )
            for error in self.peer_errors:
                yield f"  peer error: {error}"
            return
        days = ", ".join(d.isoformat() for d in self.days) or "everywhere: no day to narrow to"
        outcome = f"ERROR {self.error}" if self.error else f"{self.results} results"
        yield f"source {self.source} ({days}): {outcome} in {took}"
        for folder in self.folders:
            yield from folder.lines()


class Explanation:
    """What one search did, source by source. Created by the caller, filled in by
    ``Searcher.find`` (``window``, then one ``source`` per source searched); kept by the
    caller even when the search raises, so a failed search is explained too. Thread-safe."""

    def __init__(self) -> None:
        self.callid: str | None = None
        self.start: datetime | None = None
        self.timezone: ZoneInfo = ZoneInfo("UTC")
        self.lookback: timedelta = timedelta(0)
        self.days: list[date] = []
        self.clues: Clues | None = None
        self.sources: list[SourceTrace] = []
        self._lock = threading.Lock()

    def window(
        self,
        callid: str,
        start: datetime | None,
        timezone: ZoneInfo,
        lookback: timedelta,
        days: list[date],
    ) -> None:
        """The search's time window: the call's start (given or read from its id), the
        PBX's time zone, the look-back and the days it gives."""
        self.callid, self.start, self.timezone = callid, start, timezone
        self.lookback, self.days = lookback, list(days)
        self.clues = Clues(callid, start, timezone)

    def source(self, id: str, label: str, days: list[date], *, federated: bool) -> SourceTrace:
        """Start the trace of one source's search."""
        clues = self.clues or Clues(self.callid or "", None, self.timezone)
        trace = SourceTrace(id, label, list(days), clues, federated)
        with self._lock:
            self.sources.append(trace)
        return trace

    def to_json(self) -> dict[str, object]:
        return {
            "callid": self.callid,
            "start": None if self.start is None else self.start.isoformat(),
            "timezone": self.timezone.key,
            "lookback_minutes": int(self.lookback.total_seconds() // 60),
            "days": [d.isoformat() for d in self.days],
            "near_minutes": NEAR_MINUTES,
            "sources": [s.to_json() for s in self.sources],
        }

    def lines(self) -> Iterator[str]:
        """The explanation in words, one line each (``gateway search --explain``)."""
        if self.start is None:
            yield f"call {self.callid}: no start time known: every folder is searched"
        else:
            local = self.start.astimezone(self.timezone).strftime("%Y-%m-%d %H:%M:%S")
            hours = self.lookback.total_seconds() / 3600
            days = ", ".join(d.isoformat() for d in self.days)
            yield (
                f"call {self.callid}: started {local} {self.timezone.key}; "
                f"look-back {hours:g} h: days {days}"
            )
        for source in self.sources:
            yield from source.lines()
