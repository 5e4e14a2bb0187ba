"""The source contract: what everything ``--path`` lists provides to the search and downloads.

A source is a store searched through a layout (``gateway.sources.StoreSource``), another
gateway (``gateway.remote.RemoteSource``), or any other kind (an index, a cache) that keeps
this contract. The search (``gateway.search``), downloads (``gateway.web.files``), the command
line and ``gateway check`` only ever use what is declared here: a new kind of source changes
no module but its own.

A source:

- has an ``id``, stable for a given configuration (the same on every instance behind a load
  balancer, and after a restart), which links carry to name it; and a ``label`` to show users;
- ``search``es a query for some days before a deadline, and answers its recordings (and the
  failures of sites it asked in turn), or raises its own error: the search turns any error
  but a ``UsageError`` into an ``errors`` entry and goes on with the next source;
- opens what its links name (``file``), as a ``StoredFile`` this gateway serves itself, or
  another form its module defines (a file at another gateway: ``gateway.remote.PeerFile``,
  which downloads relay or redirect to; other forms serve ``gateway get`` only);
- MUST be safe to call from several threads at once.
- MAY say what a search did, folder by folder (``Explains``: ``gateway search --explain``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO, Protocol, runtime_checkable

from gateway.explain import SourceTrace
from gateway.query import Query
from gateway.recordings import Recording
from gateway.storage import ByteStream, Entry, LocalFile, Presigner, Store


@dataclass(frozen=True)
class SiteError:
    """One site (or source) that could not contribute to a search, and why."""

    site: str | None
    """The site's name (``--site-name``, or a peer's); ``None`` for this gateway unnamed."""
    error: str

    def to_json(self) -> dict[str, object]:
        return {"site": self.site, "error": self.error}


@dataclass(frozen=True)
class Found:
    """What one source answered: its recordings, sorted, and failures of sites it asked."""

    recordings: list[Recording]
    errors: list[SiteError] = field(default_factory=list)
    everywhere: bool = False
    """``True`` claims the search looked everywhere the call can be, whatever ``days`` said (an
    undated layout). When the days were guessed from the call id and nothing was found, such
    a source is not searched again without them; the others are."""


@dataclass(frozen=True)
class StoredFile:
    """A file this gateway reads from a store and serves itself (ranges, validators)."""

    source: str
    """The id of the source it belongs to."""
    entry: Entry
    store: Store

    def open(self, start: int = 0, end: int | None = None) -> ByteStream:
        return self.store.open(self.entry.key, start, end)

    def open_local(self) -> BinaryIO | None:
        """The file opened for reading, when the store's files are real local files: the very
        file checked, where it really lies (``Entry.real_key``), never a link swapped in since."""
        if isinstance(self.store, LocalFile):
            return self.store.open_local(
                self.entry.key if self.entry.real_key is None else self.entry.real_key
            )
        return None

    def presigned_url(self, seconds: int) -> str | None:
        """A URL of the store's own that serves the file for ``seconds``, where it has one."""
        if isinstance(self.store, Presigner):
            return self.store.presigned_url(self.entry.key, seconds)
        return None


@runtime_checkable
class Delivery(Protocol):
    """What ``Source.file`` returns: anything whose bytes can be read whole."""

    def open(self) -> ByteStream:
        """The whole file, streamed (``gateway get``)."""
        ...


@runtime_checkable
class Source(Protocol):
    """What ``--path`` lists. See the module docstring for the rules."""

    @property
    def id(self) -> str:
        """Stable identifier, carried inside links; safe to show (no secret)."""
        ...

    @property
    def label(self) -> str:
        """How users see it in messages and ``gateway check``: scheme and location, no
        secret."""
        ...

    @property
    def site(self) -> str | None:
        """The site it belongs to, for the answer's ``errors``: another gateway's name, or
        ``None`` for this gateway's own sources (then ``--site-name`` is used)."""
        ...

    @property
    def federated(self) -> bool:
        """True for another site (a gateway): asked over the network on worker threads of its
        own, concurrently with the other sources, and its failures never make a search fail
        (they are listed in the answer's ``errors``, as federation promises)."""
        ...

    def check(self) -> None:
        """Verify the source can work: ``ConfigError`` when it cannot (a missing folder),
        ``Unavailable`` when its server cannot be reached now."""
        ...

    def search(
        self, query: Query, days: Sequence[date], *, via: Sequence[str], deadline: float
    ) -> Found:
        """The call's recordings in this source. ``days`` are the PBX-local days to look in
        (empty: no start time is known, search everywhere; they may be guessed from the call
        id, see ``Found.everywhere``); ``via`` the gateways the search passed through,
        this one last; ``deadline`` a ``time.monotonic()`` value not to overrun."""
        ...

    def file(self, key: str, *, tenant: str | None) -> StoredFile | Delivery:
        """What the link naming ``key`` opens, checked: ``NotFound`` when it is gone,
        ``Forbidden`` when ``tenant`` (the tenant the link was issued to) may not open it."""
        ...

    def duration(self, recording: Recording) -> float | None:
        """Seconds of audio of one of its recordings, when cheap to tell; else ``None``."""
        ...

    def separates_tenants(self) -> bool:
        """True when each tenant's recordings lie apart (required by ``--tenants``)."""
        ...

    def inspect(self, query: Query, days: Sequence[date]) -> Iterator[str]:
        """Lines for ``gateway check``: what a search for ``query`` would look at."""
        ...

    def close(self) -> None:
        """Release connections; the source is not used afterwards."""
        ...


@runtime_checkable
class Explains(Protocol):
    """Optional capability of a source: a search that says what it did (``--explain``).

    A source without it is explained by the searcher alone: how long it took and how many
    recordings it answered."""

    def explain(
        self,
        query: Query,
        days: Sequence[date],
        trace: SourceTrace,
        *,
        via: Sequence[str],
        deadline: float,
    ) -> Found:
        """``search``, recording in ``trace`` the folders listed (``SourceTrace.folder``),
        how long each took, and their near misses. It MUST answer what ``search`` answers,
        and list only the folders ``search`` lists, but for a bounded few next to them (the
        neighbouring days) when nothing was found."""
        ...
