"""Searching the configured sources for a call, first to last."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from gateway.query import Query, search_days
from gateway.recordings import Recording
from gateway.sources import StoreSource

DEFAULT_LOOKBACK = timedelta(hours=4)


@dataclass(frozen=True)
class SearchSettings:
    timezone: ZoneInfo
    """The PBX's time zone: placeholders and day folders are computed in it."""
    lookback: timedelta = DEFAULT_LOOKBACK
    """Also search the neighbouring day when the call started this close to midnight."""
    search_all: bool = False
    """Ask every source and return all matches, instead of stopping at the first that finds."""


def search(
    sources: Sequence[StoreSource], query: Query, settings: SearchSettings
) -> list[Recording]:
    """The recordings of the call: those of the first source that has any (or of all)."""
    days = search_days(query.start, settings.timezone, settings.lookback) if query.start else []
    found: list[Recording] = []
    for source in sources:
        recordings = source.find(query, days)
        found.extend(recordings)
        if recordings and not settings.search_all:
            break
    return found
