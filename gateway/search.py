"""Searching the configured sources for a call, first to last.

Local sources (stores) are searched on the calling thread. Remote sources (other gateways)
are all asked at once, each on a short-lived daemon thread, as soon as the search starts, and
share one deadline (``peer_timeout``). The answer is then assembled in ``--path`` order, so the
order semantics do not change: without ``search_all`` the first source (local or remote) that
finds the call wins, whichever answered first. A remote site that fails or misses the
deadline never fails the search: it becomes an entry of ``SearchResult.errors``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import TypeVar
from zoneinfo import ZoneInfo

from gateway.errors import Unavailable
from gateway.query import Query, search_days
from gateway.recordings import Recording
from gateway.remote import (
    DEFAULT_PEER_TIMEOUT,
    PeerAnswer,
    PeerError,
    RemoteSource,
    SiteError,
    via_id,
)
from gateway.sources import Source, StoreSource

DEFAULT_LOOKBACK = timedelta(hours=4)
T = TypeVar("T")


@dataclass(frozen=True)
class SearchSettings:
    timezone: ZoneInfo
    """The PBX's time zone: placeholders and day folders are computed in it."""
    lookback: timedelta = DEFAULT_LOOKBACK
    """Also search the neighbouring day when the call started this close to midnight."""
    search_all: bool = False
    """Ask every source and return all matches, instead of stopping at the first that finds."""
    peer_timeout: float = DEFAULT_PEER_TIMEOUT
    """Seconds the remote sites (other gateways) get to answer, all together."""
    site: str | None = None
    """This gateway's site name (``--site-name``), shown with its own results."""
    proxy_peers: bool = False
    """Serve: give this gateway's links for remote sites' files and stream them through it."""


@dataclass(frozen=True)
class SearchResult:
    recordings: list[Recording]
    errors: list[SiteError] = field(default_factory=list)
    """Sites that could not be searched (only with remote sources), in ``--path`` order."""


def search(sources: Sequence[Source], query: Query, settings: SearchSettings) -> list[Recording]:
    """The recordings of the call: those of the first source that has any (or of all)."""
    return find_call(sources, query, settings).recordings


SourceObserver = Callable[[str, float, Exception | None], None]
"""Told of each source searched: its id, the seconds it took, and its error if it failed."""


def find_call(
    sources: Sequence[Source],
    query: Query,
    settings: SearchSettings,
    *,
    via: Sequence[str] | None = None,
    observe: SourceObserver | None = None,
) -> SearchResult:
    """Search every source as ``search`` does, and say which sources failed.

    A source that cannot be searched (an unreachable store, a failing site) never hides what
    the others find: it becomes an entry of ``errors`` and the search goes on. When nothing is
    found and a source failed, the answer cannot say "no recording": without remote sites
    that is ``Unavailable`` (HTTP 503, exit status 3); with remote sites the answer lists the
    errors, as federation promises its clients. ``via`` lists the gateways the search passed
    through, this one last (``X-Gateway-Via``); by default only this one.
    """
    days = search_days(query.start, settings.timezone, settings.lookback) if query.start else []
    remotes = [s for s in sources if isinstance(s, RemoteSource)]
    path = list(via) if via is not None else [via_id(settings.site)]
    deadline = time.monotonic() + settings.peer_timeout
    pending: dict[str, Future[PeerAnswer]] = {
        remote.id: _in_thread(partial(remote.search, query, via=path, deadline=deadline))
        for remote in remotes
    }
    local: dict[str, list[Recording] | SiteError] = {}
    for source in sources:
        if isinstance(source, StoreSource):
            local[source.id] = _find_local(source, query, days, settings.site, observe)
            got = local[source.id]
            if got and not isinstance(got, SiteError) and not settings.search_all:
                break  # later local sources cannot win any more
    found: list[Recording] = []
    errors: list[SiteError] = []
    for source in sources:
        if isinstance(source, RemoteSource):
            outcome = _wait(pending[source.id], deadline, source.site, settings.peer_timeout)
            if isinstance(outcome, SiteError):
                errors.append(outcome)
                continue
            errors.extend(outcome.errors)
            recordings: list[Recording] = list(outcome.recordings)
        else:
            result = local.get(source.id, [])
            if isinstance(result, SiteError):
                errors.append(result)
                continue
            recordings = result
        found.extend(recordings)
        if recordings and not settings.search_all:
            break
    if not found and errors and not remotes:
        raise Unavailable("; ".join(error.error for error in errors))
    return SearchResult(found, errors)


def _find_local(
    source: StoreSource,
    query: Query,
    days: list[date],
    site: str | None,
    observe: SourceObserver | None,
) -> list[Recording] | SiteError:
    started = time.monotonic()
    try:
        recordings = source.find(query, days)
    except Unavailable as exc:
        if observe is not None:
            observe(source.id, time.monotonic() - started, exc)
        return SiteError(site, str(exc))
    if observe is not None:
        observe(source.id, time.monotonic() - started, None)
    return recordings


def _wait(
    future: Future[PeerAnswer], deadline: float, site: str, timeout: float
) -> PeerAnswer | SiteError:
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        return SiteError(site, f"no answer within {timeout:g}s")
    except PeerError as exc:
        return SiteError(exc.site, exc.reason)
    except Exception as exc:  # a bug must not fail the other sites' answer
        return SiteError(site, f"internal error: {type(exc).__name__}")


def _in_thread(work: Callable[[], T]) -> Future[T]:
    """Run ``work`` on a daemon thread: a peer that hangs never holds up the process's exit."""
    future: Future[T] = Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(work())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name="gateway-peer", daemon=True).start()
    return future
