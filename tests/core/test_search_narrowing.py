"""A narrowed search lists only the folders its day window names (what makes it fast)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.plugins import load_plugins
from gateway.query import Query
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
