"""The store contract: what every storage back-end (local disk, SMB, S3, third-party) provides.

A store is rooted at a location (a folder, a share path, a bucket prefix) and addresses its
files by *keys*: ``/``-separated paths relative to that root, never starting with ``/``, never
containing ``.`` or ``..`` segments, backslashes, control characters or text that is not UTF-8
(``check_key``; ``""`` is the root itself). A store:

- MUST never read outside its root, whatever key it is given (refuse with ``Forbidden``);
- MUST be safe to call from several threads at once (the web server serves on worker threads);
- MUST translate its SDK's errors into ``gateway.errors``: a missing key or folder is
  ``NotFound``, an unreachable server or refused credentials ``Unavailable``, a key it refuses
  ``Forbidden``;
- MUST stream: ``open`` returns a ``ByteStream`` of chunks and never reads a whole file (or a
  whole range) into memory; the gateway always closes it, read to the end or not, and closing
  releases whatever it holds (a file handle, a pooled connection);
- MUST never write, move or delete anything.

A store MAY also provide ``open_local`` (see ``LocalFile``) when its files are real local
files, so the web server can hand an open file to its file wrapper.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

from gateway.errors import Forbidden

NameFilter = Callable[[str], bool]
"""Which file names a listing yields (``Store.list``'s ``match``). A filter MAY declare, as its
attribute ``folded_substring``, a text that every name it accepts holds once case-folded: a
store may then look for that text in a whole folder's names at once (see ``name_hint``)."""

CHUNK_SIZE = 256 * 1024
"""Suggested size of the chunks a store yields from ``open``."""


@runtime_checkable
class ByteStream(Protocol):
    """What ``Store.open`` returns: an iterator of ``bytes`` chunks that can be closed early.

    A generator function satisfies it (annotate it ``Generator[bytes, None, None]``; put the
    clean-up in a ``finally``). ``close()`` may be called at any point, more than once, and
    must release the stream's resources even when nothing was read. Closing a generator that
    never started does not run its ``finally``: a generator must acquire what it releases
    inside its own body, else use a small class with ``close`` (as the shipped stores do).
    """

    def __iter__(self) -> Iterator[bytes]: ...

    def __next__(self) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Entry:
    """One file (or, in a non-recursive listing, folder) in a store."""

    key: str
    size: int
    mtime: datetime
    """Modification time, timezone-aware (UTC)."""
    is_dir: bool = False
    etag: str | None = None
    """An entity tag the back-end already has (S3's ETag, quotes included), passed through to
    HTTP clients; ``None`` lets the gateway derive one from key, size and time."""
    real_key: str | None = None
    """Where the file really lies, as a key, when that is not ``key``: it was reached through a
    symbolic link (of the file or of a folder on the way) inside the root. ``None`` when
    ``key`` is where it lies, or the store has no links. A store whose root can hold links it
    follows MUST set it (in ``list`` and ``stat``): what a tenant may open is decided on it."""

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@runtime_checkable
class Store(Protocol):
    """A read-only view of recordings below one root. See the module docstring for the rules."""

    description: str
    """How to name this store to users: scheme and location, without any secret."""

    def check(self) -> None:
        """Verify that the root exists and is reachable.

        Raise ``ConfigError`` when the root does not exist, ``Unavailable`` when the server
        cannot be reached or refuses the credentials.
        """

    def list(
        self, prefix: str, *, recursive: bool = False, match: NameFilter | None = None
    ) -> Iterator[Entry]:
        """Yield the entries in folder ``prefix`` (``""`` for the root), in no set order.

        Non-recursive: files and folders directly inside (folders with ``is_dir=True``).
        Recursive: every file below ``prefix`` at any depth, and no folders.
        ``match``, when given, is called with each file's name: only files it accepts are
        yielded (folders are not filtered). A store whose listing does not carry sizes and
        times should fetch them only for accepted files.
        Raise ``NotFound`` when the folder does not exist (on the first ``next()`` at the
        latest).
        """

    def stat(self, key: str) -> Entry:
        """Return the file at ``key``; ``NotFound`` if it is missing or is a folder."""

    def open(self, key: str, start: int = 0, end: int | None = None) -> ByteStream:
        """Stream the bytes ``start`` up to ``end`` (exclusive; ``None`` = end of file) in
        chunks of about ``CHUNK_SIZE``, reading from the back-end only what the range needs.

        Errors that can be known before the first byte (missing key, unreachable server) are
        raised by this call itself, not by the first ``next()``. Errors while streaming are
        the gateway's errors too (``Unavailable`` for a connection lost mid-way).
        """

    def close(self) -> None:
        """Release connections. The store is not used afterwards."""


@runtime_checkable
class LocalFile(Protocol):
    """Optional capability: the store's files are real files on this machine."""

    def open_local(self, key: str) -> BinaryIO:
        """Open the file that really lies at ``key`` for reading, raising the errors ``open``
        would; the caller closes it. The checks apply to what was opened, not to a path
        looked at before: a regular file (never block on a FIFO or a device), whose real
        location is ``key`` itself: a file reached through a symbolic link is ``Forbidden``
        (callers pass ``Entry.real_key``, so a link swapped in after their checks is refused).
        """
        ...


_BAD_CHARS = re.compile(r"[\\\x00-\x1f\x7f\ud800-\udfff]")
"""Backslashes, control characters (NUL included) and lone surrogates: a name that is not
UTF-8, as Python's ``os`` functions hand it (``surrogateescape``)."""


def check_key(key: str, *, allow_root: bool = False) -> list[str]:
    """Validate a key against the rules every store shares; return its segments.

    Raise ``Forbidden`` for absolute keys, ``.``/``..`` or empty segments, backslashes, control
    characters (NUL included) and lone surrogates (a name that is not UTF-8 text). Stores add
    their own rules (SMB streams, symlinks) on top. A listed file whose key breaks these rules
    is never shown (``gateway.sources``): its link could not open it.
    """
    if key == "" and allow_root:
        return []
    if not key or key.startswith("/") or _BAD_CHARS.search(key):
        raise Forbidden(f"refused key {key!r}")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise Forbidden(f"refused key {key!r}")
    return parts


def name_hint(match: NameFilter | None) -> str | None:
    """The text every name ``match`` accepts holds once case-folded (``str.casefold``), when it
    declares one; a store can skip the names without it and call ``match`` on the rest."""
    hint = getattr(match, "folded_substring", None)
    return hint if isinstance(hint, str) and hint and "\0" not in hint else None


def join_key(prefix: str, name: str) -> str:
    """Join a folder key and a name."""
    return f"{prefix}/{name}" if prefix else name


@runtime_checkable
class Presigner(Protocol):
    """Optional capability: the store can hand out a short-lived URL a browser fetches directly
    (S3 presigned GET). The URL must serve byte ranges like the gateway does."""

    def presigned_url(self, key: str, expires_in: int) -> str:
        """Return a URL valid for ``expires_in`` seconds that serves ``key``."""
        ...
