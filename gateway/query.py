"""A search for one call, checked once at the edge, and the timestamp formats clients send."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import tzlocal

from gateway.errors import UsageError

_CALLID_MAX = 200
MIN_YEAR, MAX_YEAR = 1970, 9000
_QM_FORMAT = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(\d{2}:\d{2}:\d{2})$")
_EPOCH = re.compile(r"^([0-9]{9,17})(?:\.[0-9]+)?$")
"""Epoch time as a number: its integer digits say the unit (``_EPOCH_UNITS``)."""
_EPOCH_UNITS = ((11, 0), (14, 3), (17, 6))
"""(most integer digits, decimal exponent of the unit): 9 to 11 digits are seconds, 12 to 14
milliseconds, 15 to 17 microseconds. Without leading zeros each reads as 1973-03-03 to
5138-11-16: the ranges do not overlap, so a number has one reading only."""
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ASTERISK_ID = re.compile(r"(?:^|-)(\d{10})\.\d{1,10}$")
"""Asterisk's unique id: ``EPOCH.SEQ``, maybe after ``systemname-`` (asterisk.conf)."""
_ID_FUTURE = timedelta(days=1)

DEFAULT_CALLID_PATTERN = (
    r"(?:[A-Za-z0-9_.-]+-)?[0-9]{9,10}\.[0-9]{1,10}"
    r"|[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}"
)
"""What a call id looks like unless ``--callid-pattern`` says otherwise: Asterisk's unique id
(``EPOCH.SEQ``, maybe after ``systemname-``) or a UUID (FreeSWITCH, FusionPBX). A phone
number, an extension, a queue or a date does not have this shape, so it cannot list the
calls whose file names happen to hold it."""
DEFAULT_CALLID_SHAPE = re.compile(DEFAULT_CALLID_PATTERN)


@dataclass(frozen=True)
class Query:
    """What a client knows about the call it wants the recordings of."""

    callid: str
    """The call's unique id as the PBX wrote it: Asterisk's ``EPOCH.SEQ`` (``1773047410.12``,
    maybe prefixed by a system name), a FreeSWITCH UUID. Checked: not empty, at most 200
    characters, no ``/``, ``\\`` or control character, at least one digit."""
    start: datetime | None = None
    """Start of the call, timezone-aware; ``None`` when the client did not say."""
    tenant: str | None = None
    """The tenant (``%TE``), a plain folder name; always the caller's own with ``--tenants``."""
    queue: str | None = None
    """The queue as the client names it (QueueMetrics sends the Asterisk queue name, e.g.
    ``sales`` or ``400``); free text, unchecked: a layout that puts it in a path must check it
    (``check_segment``)."""
    agent: str | None = None
    """The agent as the client names it (QueueMetrics sends its agent code, e.g. ``Agent/101``
    or ``SIP/201``): free text, unchecked, may hold ``/``; a layout that puts it in a path must
    check it (``check_segment``)."""
    server: str | None = None
    """The PBX server id in a QueueMetrics cluster (often empty): free text, unchecked."""

    def __post_init__(self) -> None:
        check_callid(self.callid)
        if self.tenant is not None:
            check_segment("tenant", self.tenant)
        if self.start is not None and self.start.tzinfo is None:
            raise ValueError("Query.start must be timezone-aware")


def check_callid(callid: str) -> None:
    """Refuse call ids that are empty, too long or could be read as a path."""
    if not callid or not callid.strip():
        raise UsageError("the call id is empty")
    if len(callid) > _CALLID_MAX:
        raise UsageError(f"the call id is longer than {_CALLID_MAX} characters")
    if any(c in callid for c in "/\\") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in callid):
        raise UsageError("the call id contains '/', '\\' or a control character")
    if not any(c.isdigit() for c in callid):
        # Asterisk's ids are epoch.sequence, FreeSWITCH's are UUIDs: a word such as "wav" or
        # "out" is no call id, and would match a whole archive.
        raise UsageError("the call id holds no digit: it does not name a call")


def callid_shape(pattern: str) -> re.Pattern[str]:
    """``--callid-pattern``: the regular expression every call id must match as a whole."""
    try:
        shape = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--callid-pattern is not a regular expression: {exc}") from None
    if shape.fullmatch(""):
        raise UsageError("--callid-pattern matches an empty call id: it would name no call")
    return shape


def check_callid_shape(callid: str, shape: re.Pattern[str]) -> None:
    """Refuse a call id that does not have the shape of the PBX's call ids (``shape``)."""
    if shape.fullmatch(callid) is None:
        raise UsageError(
            "the call id does not look like one call's id (Asterisk's EPOCH.SEQ, maybe after "
            "a system name, or a UUID, unless --callid-pattern says otherwise): a phone "
            "number, an extension, a queue or a date would list other calls' recordings"
        )


def check_segment(what: str, value: str) -> None:
    """Refuse a value that will be put into a path as one folder name (a tenant, a queue)."""
    bad = (
        not value
        or value in (".", "..")
        or len(value) > 255
        or any(c in value for c in "/\\*?%")
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)
    )
    if bad:
        raise UsageError(f"the {what} {value!r} is not a valid folder name")


def parse_timezone(name: str | None) -> ZoneInfo:
    """An IANA zone by name; the machine's own zone when ``name`` is ``None``."""
    if name is None:
        try:
            return ZoneInfo(tzlocal.get_localzone_name() or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {name!r} (use an IANA name like Europe/Rome)"
        ) from None


def parse_timestamp(text: str, tz: ZoneInfo) -> datetime:
    """Parse epoch time, ISO 8601 or QueueMetrics' ``2000-01-01.00:00:00``.

    Epoch time is a number of 9 to 17 integer digits, maybe with a fraction; its length says
    the unit: up to 11 digits seconds (``1773081123``), 12 to 14 milliseconds
    (``1773081123265``, what JavaScript's ``Date.now()`` gives), 15 to 17 microseconds. A
    time without a zone is read in ``tz`` (the PBX's zone). The result is timezone-aware,
    between ``MIN_YEAR`` and ``MAX_YEAR``; anything else is a ``UsageError`` (400).
    """
    value = text.strip()
    try:
        epoch = _EPOCH.match(value)
        if epoch:
            return _from_epoch(value, len(epoch.group(1)))
        qm = _QM_FORMAT.match(value)
        if qm:
            value = f"{qm.group(1)}T{qm.group(2)}"
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        raise UsageError(
            f"cannot read the timestamp {text!r}: use epoch seconds (or milliseconds), "
            "ISO 8601 or 2000-01-01.00:00:00"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    if not MIN_YEAR <= parsed.astimezone(UTC).year <= MAX_YEAR:
        raise UsageError(f"the timestamp {text!r} is out of range ({MIN_YEAR} to {MAX_YEAR})")
    return parsed


def _from_epoch(number: str, digits: int) -> datetime:
    """``number`` (``_EPOCH``, ``digits`` integer digits) as a UTC instant, to the microsecond
    (computed in decimal: no binary rounding of ``.265``)."""
    exponent = next(unit for most, unit in _EPOCH_UNITS if digits <= most)
    micros = Decimal(number).scaleb(6 - exponent).to_integral_value(ROUND_HALF_EVEN)
    return _UNIX_EPOCH + timedelta(microseconds=int(micros))


def call_start(callid: str, *, now: datetime | None = None) -> datetime | None:
    """When the call started, read from an Asterisk unique id; ``None`` for other ids.

    Asterisk names a channel ``EPOCH.SEQ`` (``1773047700.109``), prefixed by ``systemname-``
    when one is set: the epoch second the channel was created, that is the call's start. Ten
    digits (September 2001 to 2286) and at most a day ahead of ``now``, so a FreeSWITCH UUID,
    a number that only looks like one, or a clock far off gives ``None``.
    """
    match = _ASTERISK_ID.search(callid)
    if match is None:
        return None
    start = datetime.fromtimestamp(int(match.group(1)), UTC)
    if start > (now or datetime.now(UTC)) + _ID_FUTURE:
        return None
    return start


def search_days(start: datetime, tz: ZoneInfo, lookback: timedelta) -> list[date]:
    """The PBX-local days to search for a call that started at ``start``.

    The call's own day, plus the previous day when it started less than ``lookback`` after
    midnight and the next day when it started less than ``lookback`` before midnight. Hours are
    counted on the PBX's wall clock (the clock its folder names follow), so the answer is the
    same whether the client sent the time with an offset, without one, or as epoch seconds.
    """
    local = start.astimezone(tz).replace(tzinfo=None)
    day = local.date()
    since_midnight = local - datetime.combine(day, time())
    days = [day]
    if since_midnight < lookback:
        days.insert(0, day - timedelta(days=1))
    if timedelta(days=1) - since_midnight < lookback:
        days.append(day + timedelta(days=1))
    return days
