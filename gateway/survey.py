"""Looking at an archive to propose its layout, as ``gateway setup`` does.

The survey reads a store through the store contract (so a folder, a share and a bucket are
looked at alike) and lists a bounded number of folders (``LISTINGS``): the newest year, month
and day it finds, never the whole archive. It recognises the built-in layouts by their folders,
whether or not they hold recordings yet:

- ``freepbx``: ``YYYY/MM/DD/`` below the root (FreePBX, Issabel, plain Asterisk with dated
  folders);
- ``fusionpbx``: ``<domain>/archive/YYYY/Mon/DD/`` (FusionPBX and FreeSWITCH);
- ``flat``: anything else (every search then scans the whole tree).

It also names a few of the newest recordings it found, with their call ids, so that a search
for each can be timed.
"""

from __future__ import annotations

import collections
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from gateway.errors import GatewayError
from gateway.placeholders import MONTHS
from gateway.recordings import audio_format
from gateway.storage import Entry, Store

SAMPLES = 3
"""How many recordings a survey names."""
LISTINGS = 400
"""Most folder listings a survey makes (each is a request on SMB and S3)..."""
DOMAINS_PROBED = 2000
"""...besides one for each of at most this many top folders, probed as FusionPBX domains."""
FLAT_ENTRIES = 10_000
"""Most entries the survey of an archive without dated folders looks at for recordings."""
_DAYS_TRIED = 40
"""How many dated folders (newest first) are listed in search of recordings."""
_DOMAINS_SAMPLED = 5
"""How many FusionPBX domains are looked into for their newest recordings."""
_YEAR = re.compile(r"(?:19|20)[0-9]{2}")
_NUMBER_MONTH = re.compile(r"0[1-9]|1[0-2]")
_NAMED_MONTH = re.compile("|".join(MONTHS))
_DAY = re.compile(r"0[1-9]|[12][0-9]|3[01]")
_CALLID = re.compile(
    r"(?<![0-9A-Za-z.])"
    r"(?:[0-9]{9,10}\.[0-9]{1,10}|[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12})"
    r"(?![0-9A-Za-z])"
)
"""A call id inside a file name: Asterisk's ``EPOCH.SEQ`` or a UUID (the shapes of
``DEFAULT_CALLID_PATTERN``, without the system-name prefix a name's other fields would pass
for)."""


@dataclass(frozen=True)
class Sample:
    """A recording the survey found, and the call id its name holds."""

    key: str
    callid: str
    mtime: datetime
    day: date | None = None
    """The day of the dated folder it lies in (the call's day, whatever its file's time)."""


@dataclass(frozen=True)
class Survey:
    """What the archive looks like."""

    layout: str
    """The built-in layout that fits: ``freepbx``, ``fusionpbx`` or ``flat``."""
    reason: str
    """What was seen, in words (``dated folders YYYY/MM/DD, newest 2026/03/09``)."""
    samples: tuple[Sample, ...]
    """Up to ``SAMPLES`` of the newest recordings with a call id in their name."""


def survey(store: Store) -> Survey:
    """Look at ``store`` and say which layout fits it.

    Raises the store's errors for its root (``ConfigError`` when it is missing,
    ``Unavailable``); a folder that cannot be listed below it is passed over.
    """
    store.check()
    looker = _Looker(store, LISTINGS)
    dated = _newest_recordings(looker, "", _dated(looker, "", _NUMBER_MONTH))
    if dated is not None:
        folder, samples = dated
        return Survey("freepbx", _said("dated folders YYYY/MM/DD", folder, samples), samples)
    domains = _fusionpbx_domains(store, sorted(looker.folders("")))
    found: list[tuple[str, tuple[Sample, ...]]] = []
    for domain in domains:
        archive = f"{domain}/archive"
        newest = _newest_recordings(looker, archive, _dated(looker, archive, _NAMED_MONTH))
        if newest is not None:
            found.append((f"{archive}/{newest[0]}", newest[1]))
    if found:
        folder, samples = max(found, key=lambda f: (bool(f[1]), _day(f[0].split("/", 2)[2])))
        what = "FusionPBX domain folders <domain>/archive/YYYY/Mon/DD"
        return Survey("fusionpbx", _said(what, folder, samples), samples)
    return Survey(
        "flat",
        "no dated folders: every search will scan the whole tree (give --layout, or a path "
        "with placeholders, for another structure)",
        _flat_samples(looker),
    )


def _fusionpbx_domains(store: Store, folders: list[str]) -> list[str]:
    """The first of ``folders`` (up to ``_DOMAINS_SAMPLED``) that hold FusionPBX's
    ``archive/YYYY``: one listing each, for up to ``DOMAINS_PROBED`` folders."""
    probe = _Looker(store, DOMAINS_PROBED)
    domains: list[str] = []
    for domain in folders:
        if probe.spent or len(domains) >= _DOMAINS_SAMPLED:
            break
        if any(_YEAR.fullmatch(name) for name in probe.folders(f"{domain}/archive")):
            domains.append(domain)
    return domains


def _flat_samples(looker: _Looker) -> tuple[Sample, ...]:
    """A few of the newest recordings of a tree without dated folders, looked for folder by
    folder (breadth first) in at most ``FLAT_ENTRIES`` entries and the listings left."""
    found: list[Entry] = []
    waiting = collections.deque([""])
    seen = 0
    while waiting and not looker.spent and seen < FLAT_ENTRIES:
        for entry in itertools.islice(looker.entries(waiting.popleft()), FLAT_ENTRIES - seen):
            seen += 1
            if entry.is_dir:
                waiting.append(entry.key)
            elif _named(entry.name):
                found.append(entry)
    return _newest(found)


class _Looker:
    """The store, listed at most ``limit`` times; a folder that cannot be listed (gone,
    refused) counts as empty."""

    def __init__(self, store: Store, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.listings = 0

    @property
    def spent(self) -> bool:
        return self.listings >= self.limit

    def entries(self, prefix: str) -> Iterator[Entry]:
        if self.spent:
            return
        self.listings += 1
        try:
            yield from self.store.list(prefix)
        except GatewayError:
            return

    def folders(self, prefix: str) -> list[str]:
        return [e.name for e in self.entries(prefix) if e.is_dir]


def _named(name: str) -> bool:
    """A recording whose name holds a call id."""
    return audio_format(name) is not None and _CALLID.search(name) is not None


def _said(what: str, folder: str, samples: tuple[Sample, ...]) -> str:
    return f"{what}, newest {folder}" + ("" if samples else " (no recording with a call id yet)")


def _day(folder: str) -> tuple[int, ...]:
    """``2026/Mar/09`` or ``2026/03/09`` as numbers that sort by date."""
    return tuple(MONTHS.index(p) + 1 if p in MONTHS else int(p) for p in folder.split("/"))


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder and name else folder or name


def _dated(looker: _Looker, base: str, month: re.Pattern[str]) -> Iterator[str]:
    """The ``YEAR/MONTH/DAY`` folders below ``base`` that name a real day, newest first."""
    for folder in _levels(looker, base, (_YEAR, month, _DAY)):
        if _date(folder) is not None:
            yield folder


def _date(folder: str) -> date | None:
    try:
        return date(*_day(folder))
    except ValueError:  # 2026/02/31
        return None


def _levels(looker: _Looker, base: str, levels: tuple[re.Pattern[str], ...]) -> Iterator[str]:
    if not levels:
        yield ""
        return
    first, rest = levels[0], levels[1:]
    names = [name for name in looker.folders(base) if first.fullmatch(name)]
    order = MONTHS.index if first is _NAMED_MONTH else str
    for name in sorted(names, key=order, reverse=True):
        for below in _levels(looker, _join(base, name), rest):
            yield _join(name, below)


def _newest_recordings(
    looker: _Looker, base: str, days: Iterable[str]
) -> tuple[str, tuple[Sample, ...]] | None:
    """The newest of ``days`` (folders below ``base``, newest first) that holds recordings,
    and a few of them; the newest of all, without recordings, when none of the first
    ``_DAYS_TRIED`` holds any; ``None`` when there are no ``days``."""
    tried = list(itertools.islice(days, _DAYS_TRIED))
    for folder in tried:
        entries = (e for e in looker.entries(_join(base, folder)) if _named(e.name))
        samples = _newest(entries, day=_date(folder))
        if samples:
            return folder, samples
    return (tried[0], ()) if tried else None


def _newest(entries: Iterable[Entry], day: date | None = None) -> tuple[Sample, ...]:
    """Up to ``SAMPLES`` of the newest of ``entries``, as samples of the folder of ``day``."""
    found = [entry for entry in entries if not entry.is_dir]
    found.sort(key=lambda e: (e.mtime, e.key), reverse=True)
    return tuple(_sample(entry, day) for entry in found[:SAMPLES])


def _sample(entry: Entry, day: date | None) -> Sample:
    match = _CALLID.search(entry.name)
    assert match is not None  # _named accepted it
    return Sample(entry.key, match.group(0), entry.mtime, day)
