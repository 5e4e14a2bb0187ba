"""Timestamps in every accepted form, and which PBX-local days a call is searched under."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.errors import UsageError
from gateway.query import parse_timestamp, search_days

ROME = ZoneInfo("Europe/Rome")
NEW_YORK = ZoneInfo("America/New_York")
FOUR_HOURS = timedelta(hours=4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1773081123", datetime(2026, 3, 9, 18, 32, 3, tzinfo=UTC)),
        ("1773081123.5", datetime(2026, 3, 9, 18, 32, 3, 500000, tzinfo=UTC)),
        ("2026-03-09T19:32:03+01:00", datetime(2026, 3, 9, 18, 32, 3, tzinfo=UTC)),
        ("2026-03-09T18:32:03Z", datetime(2026, 3, 9, 18, 32, 3, tzinfo=UTC)),
        ("2026-03-09T19:32:03", datetime(2026, 3, 9, 18, 32, 3, tzinfo=UTC)),  # read in Rome
        ("2026-03-09 19:32:03", datetime(2026, 3, 9, 18, 32, 3, tzinfo=UTC)),
        ("2026-03-09.19:32:03", datetime(2026, 3, 9, 18, 32, 3, tzinfo=UTC)),  # QueueMetrics
        ("1773081123000", datetime(2026, 3, 9, 18, 32, 3, tzinfo=UTC)),  # milliseconds
        ("1773081123000000", datetime(2026, 3, 9, 18, 32, 3, tzinfo=UTC)),  # microseconds
    ],
)
def test_every_timestamp_form_gives_the_same_instant(text: str, expected: datetime) -> None:
    assert parse_timestamp(text, ROME) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Integer digits say the unit: up to 11 seconds, 12 to 14 milliseconds, 15 to 17
        # microseconds; the fraction is kept to the microsecond, without binary rounding.
        ("1773081123.265", "2026-03-09T18:32:03.265000"),
        ("1773081123265", "2026-03-09T18:32:03.265000"),
        ("1773081123265.5", "2026-03-09T18:32:03.265500"),
        ("1773081123265432", "2026-03-09T18:32:03.265432"),
        ("100000000", "1973-03-03T09:46:40"),  # 9 digits: the smallest epoch seconds
        ("99999999999", "5138-11-16T09:46:39"),  # 11 digits: the largest
        ("100000000000", "1973-03-03T09:46:40"),  # 12 digits: milliseconds
        ("99999999999999", "5138-11-16T09:46:39.999000"),  # 14 digits
        ("100000000000000", "1973-03-03T09:46:40"),  # 15 digits: microseconds
        ("99999999999999999", "5138-11-16T09:46:39.999999"),  # 17 digits
    ],
)
def test_epoch_numbers_are_read_in_the_unit_their_length_says(text: str, expected: str) -> None:
    moment = parse_timestamp(text, ROME)
    assert moment.tzinfo is not None
    assert moment.astimezone(UTC).replace(tzinfo=None).isoformat() == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday",
        "2026-13-01",
        "2026-03-09.25:00:00",
        "12",
        "12345678",  # 8 digits: no epoch reading (and not a date)
        "100000000000000000",  # 18 digits: no unit
        "1.773081123265e12",
        "-1773081123",
        "1773081123265ms",
        "\uff11\uff17\uff17\uff13\uff10\uff18\uff11\uff11\uff12\uff13",  # full-width digits
    ],
)
def test_malformed_timestamps_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="timestamp"):
        parse_timestamp(text, ROME)


def local(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


def test_midday_call_is_searched_on_its_day_only() -> None:
    assert search_days(local(ROME, 2026, 3, 9, 12, 0), ROME, FOUR_HOURS) == [date(2026, 3, 9)]


def test_call_just_after_midnight_also_searches_previous_day() -> None:
    days = search_days(local(ROME, 2026, 3, 9, 3, 59), ROME, FOUR_HOURS)
    assert days == [date(2026, 3, 8), date(2026, 3, 9)]


def test_call_exactly_lookback_after_midnight_searches_its_day_only() -> None:
    assert search_days(local(ROME, 2026, 3, 9, 4, 0), ROME, FOUR_HOURS) == [date(2026, 3, 9)]


def test_call_just_before_midnight_also_searches_next_day() -> None:
    days = search_days(local(ROME, 2026, 3, 9, 20, 1), ROME, FOUR_HOURS)
    assert days == [date(2026, 3, 9), date(2026, 3, 10)]


def test_lookback_zero_searches_only_the_call_day() -> None:
    days = search_days(local(ROME, 2026, 3, 9, 0, 1), ROME, timedelta(0))
    assert days == [date(2026, 3, 9)]


def test_days_are_computed_in_the_pbx_zone_not_utc() -> None:
    # 2026-12-31 22:30 in New York is already 2027-01-01 in UTC: the PBX filed it under 2026.
    start = datetime(2027, 1, 1, 3, 30, tzinfo=UTC)
    assert search_days(start, NEW_YORK, timedelta(hours=1)) == [date(2026, 12, 31)]
    assert search_days(start, NEW_YORK, FOUR_HOURS) == [date(2026, 12, 31), date(2027, 1, 1)]


def test_year_end_lookback_crosses_into_previous_year() -> None:
    days = search_days(local(NEW_YORK, 2027, 1, 1, 1, 0), NEW_YORK, FOUR_HOURS)
    assert days == [date(2026, 12, 31), date(2027, 1, 1)]


def test_month_end_with_dst_change_in_between() -> None:
    # Europe/Rome switches to summer time on 2026-03-29; 2026-03-31 23:00 is near April.
    days = search_days(local(ROME, 2026, 3, 31, 23, 0), ROME, FOUR_HOURS)
    assert days == [date(2026, 3, 31), date(2026, 4, 1)]


@pytest.mark.parametrize(
    "text",
    ["2026-10-25T03:30:00", "2026-10-25T03:30:00+01:00", "2026-10-25T02:30:00Z", "1792895400"],
)
def test_the_same_instant_in_any_form_gives_the_same_days_on_a_dst_day(text: str) -> None:
    # Rome falls back from 03:00 to 02:00 on 2026-10-25: 03:30 is 3.5 wall-clock hours after
    # midnight, so the previous day is searched too, however the client wrote the time.
    days = search_days(parse_timestamp(text, ROME), ROME, FOUR_HOURS)
    assert days == [date(2026, 10, 24), date(2026, 10, 25)]


def test_exactly_lookback_before_midnight_searches_its_day_only() -> None:
    assert search_days(local(ROME, 2026, 3, 9, 20, 0), ROME, FOUR_HOURS) == [date(2026, 3, 9)]


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00Z", "9999-12-31T23:00:00", "1969-12-31"])
def test_timestamps_out_of_range_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="out of range"):
        parse_timestamp(text, ROME)
