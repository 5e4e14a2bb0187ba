"""Sources: where to look, given the Uniloader way (``--path 'file:/var/media,smb://nas/rec/%YY'``).

A source is a store (chosen by the URL scheme, rooted at the path's fixed part: the folders
before the first placeholder) plus a layout (the path's placeholders, or ``--layout``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import date

from gateway.errors import NotFound, UsageError
from gateway.layouts import WILDCARD, Layout, PathPattern, has_placeholders
from gateway.plugins import Plugins
from gateway.query import Query
from gateway.recordings import CallMatcher, Recording
from gateway.remote import DEFAULT_PEER_TIMEOUT, SCHEMES, RemoteSource
from gateway.storage import Store, join_key

MAX_FILES_PER_CALL = 100
"""A call has a few files (legs, transfers); an id matching more is not a call id."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")


class StoreSource:
    """A store searched through a layout. Thread-safe."""

    def __init__(self, id: str, store: Store, layout: Layout) -> None:
        self.id = id
        self.store = store
        self.layout = layout
        self._checked = False
        self._lock = threading.Lock()

    def check(self) -> None:
        """Make sure the store's root is there (once; later calls are free)."""
        if not self._checked:
            with self._lock:
                if not self._checked:
                    self.store.check()
                    self._checked = True

    def find(self, query: Query, days: Sequence[date]) -> list[Recording]:
        """Every audio file of the call in this source, sorted by key."""
        scans = self.layout.scans(query, days)
        self.check()
        matches = CallMatcher(query.callid)
        found: dict[str, Recording] = {}
        for scan in scans:
            for folder in self.expand(scan.prefix):
                try:
                    listing = self.store.list(folder, recursive=scan.recursive, match=matches)
                    for entry in listing:
                        if entry.is_dir or not matches(entry.name):
                            continue
                        if scan.keys is None or scan.keys.fullmatch(entry.key):
                            found[entry.key] = Recording.from_entry(self.id, entry)
                            if len(found) > MAX_FILES_PER_CALL:
                                raise UsageError(
                                    f"more than {MAX_FILES_PER_CALL} files match the call id "
                                    f"{query.callid!r}: it does not name one call"
                                )
                except NotFound:
                    continue  # a day folder that does not exist holds no recordings
        return [found[k] for k in sorted(found)]

    def expand(self, prefix: str) -> Iterator[str]:
        """Replace ``*`` segments by every folder at that level."""
        if WILDCARD not in prefix.split("/"):
            yield prefix
            return
        head, _, tail = prefix.partition(f"{WILDCARD}")
        base = head.rstrip("/")
        try:
            folders = [e.name for e in self.store.list(base) if e.is_dir]
        except NotFound:
            return
        for name in sorted(folders):
            yield from self.expand(join_key(base, name) + tail)

    def close(self) -> None:
        self.store.close()


Source = StoreSource | RemoteSource
"""What ``--path`` lists: a store searched here, or another gateway (``gateway+https://``)."""


def split_scheme(item: str, default_scheme: str) -> tuple[str, str]:
    """``smb://h/s`` -> ("smb", "//h/s"); a bare folder gets ``default_scheme``."""
    m = _SCHEME.match(item)
    if m:
        return m.group(1).lower(), item[m.end() :]
    return default_scheme, item


def split_pattern(location: str) -> tuple[str, str]:
    """Split a location at the first segment holding a placeholder: (fixed part, pattern)."""
    location, q, query = location.partition("?")
    segments = location.split("/")
    for i, segment in enumerate(segments):
        if has_placeholders(segment):
            return "/".join(segments[:i]) + q + query, "/".join(segments[i:])
    return location + q + query, ""


def open_sources(
    spec: str,
    plugins: Plugins,
    *,
    backend: str | None = None,
    layout: str | None = None,
    options: Mapping[str, str] | None = None,
    peer_timeout: float = DEFAULT_PEER_TIMEOUT,
) -> list[Source]:
    """Build the sources named by a ``--path`` value, first to last. Touches no store yet."""
    items = [item.strip() for item in spec.split(",") if item.strip()]
    if not items:
        raise UsageError("no source given: use --path FOLDER or --path SCHEME:LOCATION")
    default_scheme = plugins.scheme_for_backend(backend or "file")
    sources: list[Source] = []
    for item in items:
        scheme, location = split_scheme(item, default_scheme)
        if scheme in SCHEMES:
            remote = RemoteSource.from_url(item, timeout=peer_timeout)
            others = [s for s in sources if isinstance(s, RemoteSource)]
            if any(remote.id == s.id or remote.site == s.site for s in others):
                raise UsageError(f"the peer site {remote.site} is listed twice in --path")
            sources.append(remote)
            continue
        store_type = plugins.store_type(scheme)
        fixed, pattern = split_pattern(location)
        if pattern and layout not in (None, "flat"):
            raise UsageError(
                f"the source {item.split('@')[-1]!r} has placeholders: they are its layout, "
                f"so --layout {layout} cannot apply"
            )
        store = store_type.factory(f"{scheme}:{fixed}", dict(options or {}))
        source_layout = PathPattern(pattern) if pattern else plugins.layout(layout or "flat")
        base_id = store.description + (f"/{pattern}" if pattern else "")
        taken = {s.id for s in sources}
        source_id, n = base_id, 1
        while source_id in taken:
            n += 1
            source_id = f"{base_id}#{n}"
        sources.append(StoreSource(source_id, store, source_layout))
    return sources
