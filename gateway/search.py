"""Searching the configured sources for a call, first to last, in one loop.

Sources at other sites (``Source.federated``: other gateways) are all asked at once, as soon
as the search starts, each on a bounded pool of worker threads of its own that lives as long
as the ``Searcher``, and share one deadline (``peer_timeout``). The other sources are searched
on the calling thread, in ``--path`` order: without ``search_all`` the first source that finds
the call wins, whichever answered first.

A query without a start time whose call id carries one (Asterisk's ``EPOCH.SEQ``, see
``gateway.query.call_start``; QueueMetrics' XML-RPC sends no time) is searched on the days of
that time, with the usual look-back, like a query with that time. Only when no source finds
anything there are the sources whose search those days narrowed searched again everywhere:
the answer is the one a full scan gives, at the cost of a narrowed search when the call is
where its id says.

A source that fails (any error but a ``UsageError``, which is the caller's mistake) never
hides what the others find: it becomes an entry of ``SearchResult.errors`` and the search goes
on. When nothing is found and a source failed, the answer cannot say "no recording": without
federated sources that is ``Unavailable`` (HTTP 503, exit status 3); with them the answer lists
the errors, as federation promises its clients.
"""

from __future__ import annotations

import functools
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from gateway.errors import GatewayError, SiteUnavailable, Unavailable, UsageError
from gateway.explain import Explanation, SourceTrace
from gateway.query import (
    DEFAULT_CALLID_SHAPE,
    Query,
    call_start,
    check_callid_shape,
    search_days,
)
from gateway.recordings import Recording
from gateway.source import Explains, Found, SiteError, Source
from gateway.via import DEFAULT_PEER_TIMEOUT, via_id

log = logging.getLogger("gateway.search")

DEFAULT_LOOKBACK = timedelta(hours=4)
WORKERS_PER_SITE = 16
"""Worker threads of each federated source (each site has its own: a site that hangs or
trickles never delays the asks to the others)."""
ASKS_PER_SITE = 64
"""Asks one federated source may have running or waiting for a worker, over all searches;
beyond, the site is reported busy at once (a hung site's backlog stays bounded)."""


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
    callid_shape: re.Pattern[str] = DEFAULT_CALLID_SHAPE
    """What every call id searched for must match as a whole (``--callid-pattern``)."""


@dataclass(frozen=True)
class SearchResult:
    recordings: list[Recording]
    errors: list[SiteError] = field(default_factory=list)
    """Sources and sites that could not be searched, in ``--path`` order."""


SourceObserver = Callable[[str, float, Exception | None], None]
"""Told of each source searched: its id, the seconds it took, and its error if it failed."""


@dataclass(frozen=True)
class SourceState:
    """How a source fared in the searches since the start (the status page shows it to the
    administrator)."""

    searched: datetime | None = None
    """When a search last asked it (UTC); ``None``: not since the start."""
    reachable: bool | None = None
    """Whether that search could use it; ``None``: not searched yet."""
    last_error: str | None = None
    """The last error it gave, in words (no secret: the same text as the answers' errors)."""
    last_error_at: datetime | None = None


class SourceStates:
    """The ``SourceState`` of each source, updated by every search. Thread-safe."""

    def __init__(self) -> None:
        self._states: dict[str, SourceState] = {}
        self._lock = threading.Lock()

    def get(self, id: str) -> SourceState:
        with self._lock:
            return self._states.get(id, SourceState())

    def record(self, id: str, error: str | None) -> None:
        now = datetime.now(UTC)
        with self._lock:
            state = self._states.get(id, SourceState())
            if error is None:
                self._states[id] = SourceState(now, True, state.last_error, state.last_error_at)
            else:
                self._states[id] = SourceState(now, False, error, now)


class Searcher:
    """Searches a list of sources. Thread-safe; ``close`` ends its executors and the sources."""

    def __init__(self, sources: Sequence[Source], settings: SearchSettings) -> None:
        self.sources = list(sources)
        self.settings = settings
        self._by_id = {source.id: source for source in self.sources}
        self.states = SourceStates()
        """How each source fared in the searches so far."""
        self._asks = {
            source.id: (DaemonExecutor(WORKERS_PER_SITE), threading.BoundedSemaphore(ASKS_PER_SITE))
            for source in self.sources
            if source.federated
        }

    def source(self, id: str) -> Source | None:
        """The source a link names, if it is still configured."""
        return self._by_id.get(id)

    def find(
        self,
        query: Query,
        *,
        via: Sequence[str] | None = None,
        observe: SourceObserver | None = None,
        explain: Explanation | None = None,
    ) -> SearchResult:
        """The call's recordings: those of the first source that has any (or of all, with
        ``search_all``), and the sources that failed. ``via`` lists the gateways the search
        passed through, this one last (``X-Gateway-Via``); by default only this one.
        ``explain`` is filled in with what the search did (see ``gateway.explain``), also
        when the search raises.
        ``UsageError`` when the call id does not have the shape of one (``callid_shape``)."""
        settings = self.settings
        check_callid_shape(query.callid, settings.callid_shape)
        start = query.start or call_start(query.callid)
        days = search_days(start, settings.timezone, settings.lookback) if start else []
        if explain is not None:
            explain.window(query.callid, start, settings.timezone, settings.lookback, days)
        path = list(via) if via is not None else [via_id(settings.site)]
        began = time.monotonic()
        deadline = began + settings.peer_timeout
        asked = {
            source.id: self._ask(source, query, days, path, deadline)
            for source in self.sources
            if source.federated
        }
        answered = _stamp_answers(asked)
        found: list[Recording] = []
        errors: list[SiteError] = []
        failures: list[Exception] = []
        guessed: list[Source] = []  # searched on days read from the call id, and missed

        def search_here(source: Source, days: list[date]) -> Found:
            trace = None
            if explain is not None:
                trace = explain.source(source.id, source.label, days, federated=False)
            outcome, error = _search_here(
                source, query, days, path, deadline, settings, observe, failures, trace
            )
            self.states.record(source.id, error)
            return outcome

        def take(outcome: Found) -> bool:
            """Add a source's answer; whether the search stops there."""
            errors.extend(outcome.errors)
            found.extend(outcome.recordings)
            return bool(outcome.recordings) and not settings.search_all

        for source in self.sources:
            if source.id in asked:
                outcome, error = _wait(source, asked[source.id], deadline, settings)
                seconds = answered.get(source.id, time.monotonic()) - began
                self.states.record(source.id, error)
                if observe is not None:
                    observe(
                        source.id, seconds, SiteUnavailable(source.label, error) if error else None
                    )
                if explain is not None:
                    _trace_peer(explain, source, days, outcome, error, seconds)
            else:
                outcome = search_here(source, days)
                if query.start is None and not outcome.everywhere and not outcome.errors:
                    guessed.append(source)
            if take(outcome):
                break
        if not found:
            # The call id's time was wrong for these sources (a recording filed under another
            # day): search them everywhere, as a search without a time always did.
            for source in guessed:
                if take(search_here(source, [])):
                    break
        if not found and errors and not asked:
            raise _failure(failures, "; ".join(error.error for error in errors))
        return SearchResult(found, errors)

    def _ask(
        self, source: Source, query: Query, days: list[date], via: list[str], deadline: float
    ) -> Future[Found] | None:
        """Ask ``source`` on one of its workers; ``None`` when it has too many asks already."""
        executor, slots = self._asks[source.id]
        if not slots.acquire(blocking=False):
            return None
        future = executor.submit(source.search, query, days, via=via, deadline=deadline)
        future.add_done_callback(lambda _: slots.release())  # done, failed or cancelled
        return future

    def stop(self) -> None:
        """End the executors (asks in flight finish on their own)."""
        for executor, _ in self._asks.values():
            executor.shutdown()

    def close(self) -> None:
        """``stop``, and close every source."""
        self.stop()
        for source in self.sources:
            source.close()


T = TypeVar("T")


class DaemonExecutor:
    """A bounded pool of reused worker threads that never hold up the process's exit.

    ``concurrent.futures.ThreadPoolExecutor`` joins its workers when the interpreter exits, so
    one peer that trickles its answer byte by byte would keep ``gateway search`` from ending;
    these workers are daemons. Workers start as work comes, up to ``workers``; more work
    waits in the queue.
    """

    def __init__(self, workers: int) -> None:
        self._limit = workers
        self._threads: list[threading.Thread] = []
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the executor is shut down")
            self._work.put((future, functools.partial(fn, *args, **kwargs)))
            if len(self._threads) < self._limit:
                thread = threading.Thread(target=self._run, name="gateway-peer", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            future, work = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(work())
            except BaseException as exc:
                future.set_exception(exc)

    def shutdown(self) -> None:
        """Stop taking work; each worker ends after its current task."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._work.put(None)


def _search_here(
    source: Source,
    query: Query,
    days: list[date],
    via: list[str],
    deadline: float,
    settings: SearchSettings,
    observe: SourceObserver | None,
    failures: list[Exception],
    trace: SourceTrace | None,
) -> tuple[Found, str | None]:
    """Search ``source`` on this thread (explained in ``trace`` when given); its failure
    becomes an errors entry (and is added to ``failures``). Also answers the failure in
    words, or ``None``."""
    started = time.monotonic()
    failure: Exception | None = None
    reason: str | None = None
    try:
        if trace is not None and isinstance(source, Explains):
            outcome = source.explain(query, days, trace, via=via, deadline=deadline)
        else:
            outcome = source.search(query, days, via=via, deadline=deadline)
    except UsageError as exc:
        if trace is not None:
            trace.error = str(exc)
        raise  # the query is wrong for every source alike: the caller's 400
    except Exception as exc:
        failure = exc
        failures.append(exc)
        reason = _reason(source, exc)
        outcome = Found([], [SiteError(source.site or settings.site, reason)])
    finally:
        seconds = time.monotonic() - started
        if observe is not None:
            observe(source.id, seconds, failure)
    if trace is not None:
        trace.seconds, trace.results, trace.error = seconds, len(outcome.recordings), reason
    return outcome, reason


def _failure(failures: Sequence[Exception], message: str) -> GatewayError:
    """The error of a search that found nothing because sources failed: theirs when they all
    failed alike (a missing folder is a configuration error), else ``Unavailable``."""
    kinds = {type(exc) for exc in failures}
    if len(kinds) == 1 and issubclass(kind := kinds.pop(), GatewayError):
        try:
            return kind(message)
        except TypeError:  # a subclass with a constructor of its own
            pass
    return Unavailable(message)


def _reason(source: Source, exc: Exception) -> str:
    if isinstance(exc, GatewayError):
        text = str(exc)  # a store's own messages often name it already
        return text if source.label in text else f"{source.label}: {text}"
    log.error("search of %s failed", source.label, exc_info=exc)
    return f"{source.label}: internal error ({type(exc).__name__})"


def _stamp_answers(asked: Mapping[str, Future[Found] | None]) -> dict[str, float]:
    """When each peer's answer arrived, filled in as they arrive."""
    answered: dict[str, float] = {}
    for id, future in asked.items():
        if future is not None:
            future.add_done_callback(functools.partial(_stamp, answered, id))
    return answered


def _stamp(answered: dict[str, float], id: str, _: Future[Found]) -> None:
    answered.setdefault(id, time.monotonic())


def _trace_peer(
    explain: Explanation,
    source: Source,
    days: list[date],
    outcome: Found,
    error: str | None,
    seconds: float,
) -> None:
    """What a peer answered, in ``explain``: how many results, in how long, its errors."""
    trace = explain.source(source.id, source.label, days, federated=True)
    trace.seconds = seconds
    trace.results, trace.error = len(outcome.recordings), error
    trace.peer_errors = [e.error for e in outcome.errors if e.error != error]


def _wait(
    source: Source, future: Future[Found] | None, deadline: float, settings: SearchSettings
) -> tuple[Found, str | None]:
    """The answer of a federated source, and why it could not answer (``None`` if it did)."""
    site, timeout = source.site or settings.site, settings.peer_timeout
    if future is None:
        reason = f"still busy with {ASKS_PER_SITE} earlier searches"
        return Found([], [SiteError(site, reason)]), reason
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic())), None
    except FutureTimeout:
        future.cancel()  # not started yet (the process is shutting down): never start it
        reason = f"no answer within {timeout:g}s"
        return Found([], [SiteError(site, reason)]), reason
    except SiteUnavailable as exc:
        return Found([], [SiteError(exc.site, exc.reason)]), exc.reason
    except Exception as exc:  # a bug must not fail the other sites' answer
        log.error("search of %s failed", source.label, exc_info=exc)
        reason = f"internal error: {type(exc).__name__}"
        return Found([], [SiteError(site, reason)]), reason


def search(sources: Sequence[Source], query: Query, settings: SearchSettings) -> list[Recording]:
    """The recordings of the call in ``sources`` (a one-off ``Searcher``; closes nothing)."""
    searcher = Searcher(sources, settings)
    try:
        return searcher.find(query).recordings
    finally:
        searcher.stop()
