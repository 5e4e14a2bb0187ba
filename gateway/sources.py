"""Sources: where to look, given the Uniloader way (``--path 'file:/var/media,smb://nas/rec/%YY'``).

Every item of ``--path`` becomes one ``gateway.source.Source``: another gateway for the
``gateway+http(s)`` schemes (``gateway.remote``), else a ``StoreSource``: a store (chosen by the
URL scheme among the store plugins, rooted at the path's fixed part: the folders before the
first placeholder) searched through a layout (the path's placeholders, or ``--layout``).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import cachetools

from gateway.audioinfo import probe_duration
from gateway.errors import Forbidden, GatewayError, NotFound, UsageError
from gateway.explain import SourceTrace
from gateway.layout import WILDCARD, Layout, Scan, tenant_keys
from gateway.placeholders import PathPattern, has_placeholders
from gateway.plugins import Plugins
from gateway.query import Query
from gateway.recordings import CallMatcher, Recording
from gateway.source import Found, Source, StoredFile
from gateway.sourceurl import (
    SourceURL,
    options_for,
    redact_url,
    split_scheme,
    without_password,
)
from gateway.storage import Entry, Store, check_key, join_key
from gateway.via import DEFAULT_PEER_TIMEOUT, SCHEMES

log = logging.getLogger("gateway")

MAX_FILES_PER_CALL = 100
"""A call has a few files (legs, transfers); an id matching more is not a call id."""
DURATIONS_KEPT = 10_000
"""Durations a source remembers (about 2 MB): the calls supervisors are listening to."""
LISTING_LIMIT = 10_000
"""``gateway check`` counts at most this many files per folder (a flat layout lists all)."""


class StoreSource:
    """A store searched through a layout. Thread-safe."""

    federated: bool = False
    site: str | None = None

    def __init__(self, id: str, store: Store, layout: Layout) -> None:
        self.id = id
        self.store = store
        self.layout = layout
        self._checked = False
        self._lock = threading.Lock()
        self._durations: cachetools.LRUCache[tuple[str, int, datetime], float | None] = (
            cachetools.LRUCache(DURATIONS_KEPT)
        )

    @property
    def label(self) -> str:
        return self.store.description

    def __repr__(self) -> str:
        return f"StoreSource({self.id!r})"

    def check(self) -> None:
        """Make sure the store's root is there (once; later calls are free)."""
        if not self._checked:
            with self._lock:
                if not self._checked:
                    self.store.check()
                    self._checked = True

    def search(
        self, query: Query, days: Sequence[date], *, via: Sequence[str] = (), deadline: float = 0
    ) -> Found:
        """Every audio file of the call in this source, sorted by key. A file its link could
        not serve (``refusal``) is left out, with one line in the log."""
        scans = self.layout.scans(query, days)
        return self._search(query, days, scans, None)

    def explain(
        self,
        query: Query,
        days: Sequence[date],
        trace: SourceTrace,
        *,
        via: Sequence[str] = (),
        deadline: float = 0,
    ) -> Found:
        """``search``, recording in ``trace`` every folder listed and its near misses. When
        nothing is found and the days narrowed the search, the folders of the day before and
        the day after the window are listed too (for the explanation only: the call's file
        there is a near miss, not an answer), so a wrong time zone or look-back shows."""
        scans = self.layout.scans(query, days)
        found = self._search(query, days, scans, trace)
        if days and not found.recordings and self._narrows(query, scans):
            beside = [min(days) - timedelta(days=1), max(days) + timedelta(days=1)]
            window = {scan.prefix for scan in scans}
            extra = [s for s in self.layout.scans(query, beside) if s.prefix not in window]
            self._search(query, beside, extra, trace, outside=True)
        return found

    def _search(
        self,
        query: Query,
        days: Sequence[date],
        scans: Sequence[Scan],
        trace: SourceTrace | None,
        *,
        outside: bool = False,
    ) -> Found:
        """List ``scans``; with ``trace``, record each listing there (``outside``: the
        matches are near misses, not answers)."""
        self.check()
        matches = CallMatcher(query.callid)
        allowed = None if query.tenant is None else tenant_keys(self.layout, query.tenant)
        found: dict[str, Recording] = {}
        for scan in scans:
            for folder in self.expand(scan.prefix):
                seen = (
                    None if trace is None else trace.folder(folder, scan.recursive, outside=outside)
                )
                try:
                    listing = self.store.list(
                        folder,
                        recursive=scan.recursive,
                        match=matches if seen is None else seen.filter(matches),
                    )
                    for entry in listing:
                        if entry.is_dir:
                            continue
                        if not matches(entry.name):
                            if seen is not None:
                                seen.near(entry)
                            continue
                        if scan.keys is not None and not scan.keys.fullmatch(entry.key):
                            if seen is not None:
                                seen.near(entry, "the call's file, where the layout files no call")
                            continue
                        refused = refusal(entry, allowed)
                        if refused is not None:  # one line per search that meets it
                            log.warning("%s: not listed: %s", self.label, refused)
                            if seen is not None:
                                seen.near(entry, f"the call's file, not served: {refused}")
                            continue
                        if outside:
                            assert seen is not None
                            seen.near(entry, "the call's file, outside the search window")
                            continue
                        found[entry.key] = Recording.from_entry(self.id, entry)
                        if len(found) > MAX_FILES_PER_CALL:
                            raise UsageError(
                                f"more than {MAX_FILES_PER_CALL} files match the call id "
                                f"{query.callid!r}: it does not name one call"
                            )
                except NotFound:
                    if seen is not None:
                        seen.missing = True
                    continue  # a day folder that does not exist holds no recordings
                except GatewayError as exc:
                    if seen is not None:
                        seen.error = str(exc)
                    raise
                finally:
                    if seen is not None:
                        seen.done()
        everywhere = not found and (not days or not self._narrows(query, scans))
        return Found([found[k] for k in sorted(found)], everywhere=everywhere)

    def _narrows(self, query: Query, scans: Sequence[Scan]) -> bool:
        """Whether ``scans`` (for some days) look in fewer places than a search without days."""
        try:
            return list(scans) != list(self.layout.scans(query, []))
        except UsageError:
            return True

    def expand(self, prefix: str) -> Iterator[str]:
        """Replace ``*`` segments by every folder at that level."""
        if WILDCARD not in prefix.split("/"):
            yield prefix
            return
        head, _, tail = prefix.partition(f"{WILDCARD}")
        base = head.rstrip("/")
        try:
            folders = [e.name for e in self.store.list(base) if e.is_dir and servable(e.key)]
        except NotFound:
            return
        for name in sorted(folders):
            yield from self.expand(join_key(base, name) + tail)

    def file(self, key: str, *, tenant: str | None) -> StoredFile:
        """The file at ``key``, if ``tenant`` may open it where it really lies (after links);
        ``StoredFile.open_local`` opens that very place, so a link swapped in later fails."""
        allowed = None
        if tenant is not None:
            allowed = tenant_keys(self.layout, tenant)
            if allowed is None or not allowed.fullmatch(key):
                raise Forbidden("this link is not valid for this tenant")
        entry = self.store.stat(key)
        refused = refusal(entry, allowed)
        if refused is not None:
            raise Forbidden(f"refused: {refused}")
        return StoredFile(self.id, entry, self.store)

    def duration(self, recording: Recording) -> float | None:
        """From the file's header, read once per version of the file (key, size, time): every
        search for a call would otherwise read it again, a round trip on SMB or S3."""
        version = (recording.key, recording.size, recording.mtime)
        with self._lock:
            if version in self._durations:
                return self._durations[version]
        seconds = probe_duration(self.store, recording)
        with self._lock:
            self._durations[version] = seconds
        return seconds

    def separates_tenants(self) -> bool:
        return tenant_keys(self.layout, "tenant") is not None

    def inspect(self, query: Query, days: Sequence[date]) -> Iterator[str]:
        """Which folders a search for ``query`` would list, and how many files each holds."""
        try:
            scans = self.layout.scans(query, days)
        except UsageError as exc:
            yield f"today: {exc}"
            return
        folders = [(f, scan.recursive) for scan in scans for f in self.expand(scan.prefix)]
        if not folders:
            yield "today: no folder of today exists yet (no call recorded today?)"
        for folder, recursive in folders:
            where = (folder or "(the root)") + (" and below" if recursive else "")
            try:
                listing = self.store.list(folder, recursive=recursive)
                count = sum(1 for _ in itertools.islice(listing, LISTING_LIMIT))
            except NotFound:
                yield f"today: {where} does not exist yet (no call recorded today?)"
                continue
            except GatewayError as exc:
                yield f"today: {where}: {exc}"
                continue
            more = "+" if count == LISTING_LIMIT else ""
            yield f"today: {where} holds {count}{more} entries"

    def close(self) -> None:
        self.store.close()


def servable(key: str) -> bool:
    """Whether a listed key can be served: it keeps the key rules (``check_key``), so a link
    can carry it and a store accept it again (no backslash, control character, or name that
    is not UTF-8)."""
    try:
        check_key(key)
    except Forbidden:
        return False
    return True


def refusal(entry: Entry, allowed: re.Pattern[str] | None) -> str | None:
    """Why a listed or linked file is not served, in words for the server's log; ``None``
    when it is. The one rule for every store: a name links cannot carry, or (``allowed``: the
    keys of the tenant asking) a file that really lies outside the tenant's folders."""
    for key in (entry.key, entry.real_key):
        if key is not None and not servable(key):
            return f"{key!r} holds a backslash, a control character or bytes that are not UTF-8"
    if allowed is not None and entry.real_key is not None and not allowed.fullmatch(entry.real_key):
        return f"{entry.key!r} leads to {entry.real_key!r}, outside the tenant's folders"
    return None


def split_pattern(location: str) -> tuple[str, str]:
    """Split a location at the first segment holding a placeholder: (fixed part, pattern)."""
    location, q, query = location.partition("?")
    segments = location.split("/")
    for i, segment in enumerate(segments):
        if has_placeholders(segment):
            return "/".join(segments[:i]) + q + query, "/".join(segments[i:])
    return location + q + query, ""


def source_id(scheme: str, location: str) -> str:
    """A source's id: its ``--path`` item with the scheme spelled out, without password and
    options, a local folder made absolute (the same on every instance, and after restarts)."""
    location = SourceURL.parse(f"{scheme}:{location}").location  # without the query
    location = without_password(f"{scheme}:{location}").partition(":")[2]
    if scheme == "file" and not location.startswith("//"):
        location = os.path.normpath(os.path.abspath(location))
    return f"{scheme}:{location}"


@dataclass(frozen=True)
class SourceOptions:
    """How ``--path`` items are read (see ``open_sources``)."""

    backend: str | None = None
    """Scheme (or alias) of items without one; default ``file``."""
    layout: str | None = None
    """Layout of store sources without placeholders; default ``flat``."""
    options: Mapping[str, str] | None = None
    """Store and layout options (``--option KEY=VALUE``): ``<scheme>_NAME``, ``<layout>_NAME``."""
    peer_timeout: float = DEFAULT_PEER_TIMEOUT


SourceBuilder = Callable[[str, str, str, SourceOptions, Plugins], Source]
"""Builds one source from (id, scheme, item, options, plugins)."""


def _remote(id: str, scheme: str, item: str, how: SourceOptions, plugins: Plugins) -> Source:
    from gateway.remote import RemoteSource  # its HTTP client: only when a peer is listed

    return RemoteSource.from_url(item, timeout=how.peer_timeout, id=id)


def _store(id: str, scheme: str, item: str, how: SourceOptions, plugins: Plugins) -> Source:
    location = split_scheme(item, scheme)[1]
    store_type = plugins.store_type(scheme)
    fixed, pattern = split_pattern(location)
    if pattern and how.layout not in (None, "flat"):
        raise UsageError(
            f"the source {redact_url(item)!r} has placeholders: they are its layout, "
            f"so --layout {how.layout} cannot apply"
        )
    options = dict(how.options or {})
    store = store_type.factory(SourceURL.parse(f"{scheme}:{fixed}", options))
    if pattern:
        layout: Layout = PathPattern(pattern)
    else:
        name = how.layout or "flat"
        layout = plugins.layout(name, options_for(name, options))
    return StoreSource(id, store, layout)


KINDS: Mapping[str, SourceBuilder] = {scheme: _remote for scheme in SCHEMES}
"""Kinds of sources chosen by scheme ahead of the store plugins (another gateway)."""


def open_sources(
    spec: str,
    plugins: Plugins,
    *,
    backend: str | None = None,
    layout: str | None = None,
    options: Mapping[str, str] | None = None,
    peer_timeout: float = DEFAULT_PEER_TIMEOUT,
) -> list[Source]:
    """Build the sources named by a ``--path`` value, first to last. Touches no store yet.

    ``options`` are the ``--option KEY=VALUE`` values: ``<scheme>_NAME`` for the stores of that
    scheme, ``<layout>_NAME`` for that layout.
    """
    how = SourceOptions(backend, layout, options, peer_timeout)
    _check_option_names(options or {}, plugins)
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise UsageError("no source given: use --path FOLDER or --path SCHEME:LOCATION")
    default_scheme = plugins.scheme_for_backend(how.backend or "file")
    sources: list[Source] = []
    try:
        for item in items:
            scheme, location = split_scheme(item, default_scheme)
            base_id = source_id(scheme, location)
            taken = {s.id for s in sources}
            id, n = base_id, 1
            while id in taken:
                n += 1
                id = f"{base_id}#{n}"
            build = KINDS.get(scheme, _store)
            sources.append(build(id, scheme, item, how, plugins))
            if sources[-1].federated and id != base_id:
                raise UsageError(f"the peer gateway {base_id} is listed twice in --path")
            _refuse_duplicate_sites(sources)
    except BaseException:
        for source in sources:
            source.close()
        raise
    return sources


def _check_option_names(options: Mapping[str, str], plugins: Plugins) -> None:
    """Every ``--option`` names a store scheme or a layout before its ``_``: a typo in the
    prefix would otherwise be ignored without a word."""
    owners = sorted({*plugins.stores, *plugins.layouts}, key=len, reverse=True)
    for name in options:
        if not any(name.startswith(f"{owner}_") for owner in owners):
            raise UsageError(
                f"the option {name!r} names no store scheme or layout: options are "
                f"SCHEME_NAME or LAYOUT_NAME ({', '.join(sorted(owners))})"
            )


def _refuse_duplicate_sites(sources: Sequence[Source]) -> None:
    sites = [s.site for s in sources if s.site is not None]
    if len(sites) != len(set(sites)):
        raise UsageError(f"the peer site {sites[-1]} is listed twice in --path")
