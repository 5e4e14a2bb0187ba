"""A narrowed search lists only the folders its day window names (what makes it fast)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.plugins import load_plugins
from gateway.query import Query, call_start
from gateway.search import SearchSettings, search
from gateway.sources import StoreSource, open_sources
from gateway.storage import Entry
from tests.conftest import write

ROME = ZoneInfo("Europe/Rome")


class ListingSpy:
    """A real store that also records which folders it was asked to list."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.listed: list[tuple[str, bool]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def list(self, prefix: str, *, recursive: bool = False, **kw: Any) -> Iterator[Entry]:
        self.listed.append((prefix, recursive))
        return self._store.list(prefix, recursive=recursive, **kw)  # type: ignore[no-any-return]


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    for day in ("2026/02/28", "2026/03/01", "2026/03/02", "2026/03/03"):
        for n in range(3):
            write(tmp_path / day / f"in-1-2-{day.replace('/', '')}-1000{n}-1772300000.{n}.wav")
    write(tmp_path / "2026/03/01/in-1-2-20260301-000500-1772320000.9.wav")
    return tmp_path


def spied(path: str, layout: str | None = None) -> tuple[StoreSource, ListingSpy]:
    [source] = open_sources(path, load_plugins(), layout=layout)
    spy = ListingSpy(source.store)
    source.store = spy
    return source, spy


def test_layout_search_lists_only_the_call_day(archive: Path) -> None:
    source, spy = spied(str(archive), "freepbx")
    query = Query("1772320000.9", start=datetime(2026, 3, 1, 12, 0, tzinfo=ROME))
    found = search([source], query, SearchSettings(timezone=ROME))
    assert [r.key for r in found] == ["2026/03/01/in-1-2-20260301-000500-1772320000.9.wav"]
    assert spy.listed == [("2026/03/01", False)]


def test_lookback_adds_only_the_neighbouring_day_across_a_month_end(archive: Path) -> None:
    source, spy = spied(f"{archive}/%YY/%MM/%DD")
    query = Query("1772320000.9", start=datetime(2026, 3, 1, 0, 30, tzinfo=ROME))
    found = search([source], query, SearchSettings(timezone=ROME))
    assert len(found) == 1
    assert sorted(p for p, _ in spy.listed) == ["2026/02/28", "2026/03/01"]


def test_a_missing_day_folder_holds_nothing_and_is_not_an_error(archive: Path) -> None:
    source, spy = spied(str(archive), "freepbx")
    query = Query("1772320000.9", start=datetime(2026, 5, 1, 12, 0, tzinfo=ROME))
    assert search([source], query, SearchSettings(timezone=ROME)) == []
    assert spy.listed == [("2026/05/01", False)]


def test_later_sources_are_not_searched_once_one_finds_the_call(archive: Path) -> None:
    first, first_spy = spied(str(archive), "freepbx")
    second, second_spy = spied(str(archive), "flat")
    query = Query("1772320000.9", start=datetime(2026, 3, 1, 12, 0, tzinfo=ROME))
    search([first, second], query, SearchSettings(timezone=ROME))
    assert first_spy.listed
    assert second_spy.listed == []


# A search without a start time (QueueMetrics' XML-RPC sends none) reads it from an Asterisk
# call id, and falls back to a full scan only when the call is not where its id says.


def test_an_asterisk_id_narrows_a_search_without_a_time(archive: Path) -> None:
    source, spy = spied(str(archive), "freepbx")
    found = search([source], Query("1772320000.9"), SearchSettings(timezone=ROME))
    assert [r.key for r in found] == ["2026/03/01/in-1-2-20260301-000500-1772320000.9.wav"]
    # 00:06:40 in Rome: the call's day and, within the look-back, the day before
    assert spy.listed == [("2026/02/28", False), ("2026/03/01", False)]


def test_a_system_name_before_the_id_narrows_too(tmp_path: Path) -> None:
    write(tmp_path / "2026/03/01/out-1-2-20260301-120000-pbx1-1772362800.4.wav")
    source, spy = spied(str(tmp_path), "freepbx")
    found = search([source], Query("pbx1-1772362800.4"), SearchSettings(timezone=ROME))
    assert [r.name for r in found] == ["out-1-2-20260301-120000-pbx1-1772362800.4.wav"]
    assert spy.listed == [("2026/03/01", False)]


def test_a_call_filed_under_another_day_is_still_found(archive: Path) -> None:
    # The id says 28 February, 17:33 UTC; the recording was filed on 3 March.
    moved = write(archive / "2026/03/03/in-1-2-20260303-090000-1772300000.77.wav")
    source, spy = spied(str(archive), "freepbx")
    found = search([source], Query("1772300000.77"), SearchSettings(timezone=ROME))
    assert [r.key for r in found] == [str(moved.relative_to(archive))]
    assert spy.listed[0] == ("2026/02/28", False)
    assert spy.listed[-1] == ("", True)  # then the whole archive, as without the id's time


def test_a_missing_call_costs_one_scan_where_days_narrow_nothing(archive: Path) -> None:
    source, spy = spied(str(archive), "flat")
    assert search([source], Query("1772320000.5"), SearchSettings(timezone=ROME)) == []
    assert spy.listed == [("", True)]


def test_every_source_is_tried_on_the_ids_days_before_any_is_scanned(archive: Path) -> None:
    empty = archive.parent / "empty"
    write(empty / "2020/01/01/in-1-2-20200101-000000-1500000000.1.wav")
    first, first_spy = spied(str(empty), "freepbx")
    second, second_spy = spied(str(archive), "freepbx")
    found = search([first, second], Query("1772320000.9"), SearchSettings(timezone=ROME))
    assert [r.source for r in found] == [second.id]
    assert ("", True) not in first_spy.listed  # found on the id's days: nothing was scanned
    assert second_spy.listed == [("2026/02/28", False), ("2026/03/01", False)]


@pytest.mark.parametrize(
    "callid",
    [
        "b7d2c1a4-5e6f-4a1b-9c8d-0e1f2a3b4c5d",  # FreeSWITCH
        "1772320000",  # no sequence number: not a channel id
        "17723200001.9",  # eleven digits
        "4102444800.1",  # 2100: far in the future
        "1772320000.9x",
    ],
)
def test_ids_that_carry_no_asterisk_time_are_scanned_in_full(archive: Path, callid: str) -> None:
    assert call_start(callid) is None
    source, spy = spied(str(archive), "freepbx")
    anything = re.compile(".+")  # a site whose --callid-pattern allows these ids
    search([source], Query(callid), SearchSettings(timezone=ROME, callid_shape=anything))
    assert spy.listed == [("", True)]


def test_an_asterisk_id_is_the_channels_epoch_second() -> None:
    assert call_start("1773047700.109") == datetime(2026, 3, 9, 9, 15, tzinfo=UTC)
    assert call_start("sys-a-1773047700.109") == datetime(2026, 3, 9, 9, 15, tzinfo=UTC)
