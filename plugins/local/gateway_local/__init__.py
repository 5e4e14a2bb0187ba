"""Local-disk store: recordings in a folder of this machine (``file:/var/spool/asterisk/monitor``).

Folder listings are kept between searches while the folder provably has not changed
(``gateway_local.listing``); sizes and times are always read fresh.

Registered through the ``gateway.plugins`` entry point like any third-party store. Keys never
leave the root: besides the shared key rules, any path whose resolved form (after symlinks)
lies outside the root is refused, and listings skip symlinks that point outside it. Entries
reached through a symlink inside the root name where they really lie (``Entry.real_key``), so
a tenant's folder cannot lend it another tenant's file (``gateway.sources``).

Files are opened without blocking (``O_NONBLOCK``): a FIFO or device put at a key between a
check and the open is refused, not waited on, and what is checked is the opened descriptor
itself (regular file, real path inside the root), never the path looked at before.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from gateway.errors import ConfigError, Forbidden, GatewayError, NotFound, Unavailable
from gateway.hookspecs import StoreType, hookimpl
from gateway.sourceurl import SourceURL
from gateway.storage import (
    CHUNK_SIZE,
    ByteStream,
    Entry,
    NameFilter,
    check_key,
    join_key,
    name_hint,
)
from gateway_local.listing import Listing, ListingCache, read_listing

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NOTHING_THERE = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.ENXIO}
)
"""Errors meaning no file is there to serve: missing, a symlink loop, a name too long for the
file system, a socket (ENXIO)."""


class LocalStore:
    """Files below one local folder. Thread-safe: it keeps no state but its root and the
    listings of folders it read (``gateway_local.listing``)."""

    def __init__(self, root: Path, *, listing_cache: bool = True) -> None:
        try:
            self.root = Path(os.path.realpath(root.expanduser(), strict=True))
        except FileNotFoundError:  # checked by check(): "does not exist"
            self.root = Path(os.path.realpath(root.expanduser()))
        except OSError as exc:  # a symlink loop, a folder that cannot be read
            raise ConfigError(f"the source folder {root} cannot be used: {exc.strerror}") from None
        self.description = f"file:{self.root}"
        self._root_text = str(self.root)
        self._root_inside = os.path.join(self._root_text, "")  # with a final "/"
        self._cache = ListingCache() if listing_cache else None

    @classmethod
    def from_url(cls, url: SourceURL) -> LocalStore:
        """The store factory: ``file:/folder``, ``file:///folder`` or ``file://localhost/folder``
        (a bare ``--path /folder`` arrives as ``file:/folder``). One option:
        ``listing_cache=off`` reads every folder at every search (see ``gateway_local.listing``:
        for a network mount whose server's clock may be off)."""
        location = url.location
        if url.has_authority:  # file:///abs or file://localhost/abs
            host, _, rest = location[2:].partition("/")
            if host not in ("", "localhost"):
                raise ConfigError(f"file: sources must be local, not on host {host!r}")
            location = "/" + rest
        if not location:
            raise ConfigError("a file: source needs a folder, as in file:/var/spool/recordings")
        url.check_options(("listing_cache",))
        return cls(Path(location), listing_cache=url.flag("listing_cache", default=True))

    def check(self) -> None:
        if not self.root.is_dir():
            raise ConfigError(f"the source folder {self.root} does not exist")

    def _path(self, key: str, *, allow_root: bool = False) -> Path:
        return Path(self._real(key, allow_root=allow_root))

    def _real(self, key: str, *, allow_root: bool = False) -> str:
        """The real path of ``key`` (symlinks resolved), refused when it lies outside the root."""
        return self._resolved(key, allow_root=allow_root)[0]

    def _resolved(self, key: str, *, allow_root: bool = False) -> tuple[str, os.stat_result | None]:
        """``key``'s real path, refused outside the root, and the status of the very file
        that path was resolved to (``None`` when there is none to resolve)."""
        parts = check_key(key, allow_root=allow_root)
        real, st = resolve(os.path.join(self._root_text, *parts))
        if not self._inside(real):
            raise Forbidden(f"refused key {key!r}: it leads outside the source folder")
        return real, st

    def _inside(self, real: str) -> bool:
        """Whether a real path (symlinks resolved) is the root or lies below it."""
        return real == self._root_text or real.startswith(self._root_inside)

    def _entry(self, key: str, st: os.stat_result, real: str) -> Entry:
        """The entry of ``key``, whose real path (inside the root) is ``real``."""
        mtime = datetime.fromtimestamp(st.st_mtime, UTC)
        here = os.path.join(self._root_text, key) if key else self._root_text
        real_key = None if real == here else real[len(self._root_inside) :]
        return Entry(key, st.st_size, mtime, stat.S_ISDIR(st.st_mode), real_key=real_key)

    def _error(self, what: str, exc: OSError) -> GatewayError:
        """The gateway's error for an ``OSError`` met reading ``what`` (a key or folder)."""
        if exc.errno in _NOTHING_THERE:
            return NotFound(f"no {what}")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return Forbidden(f"cannot read {what}")
        return Unavailable(f"{self.description}: {exc.strerror}")

    def list(
        self, prefix: str, *, recursive: bool = False, match: NameFilter | None = None
    ) -> Iterator[Entry]:
        pending = [(self._real(prefix, allow_root=True), prefix)]
        while pending:
            path, key_prefix = pending.pop()
            try:
                listing = self._listing(path)
            except OSError as exc:
                error = self._error(f"folder {key_prefix!r}", exc)
                if key_prefix == prefix or isinstance(error, Unavailable):
                    raise error from None
                continue  # vanished or unreadable below the folder asked for
            for name in listing.folders:
                if recursive:
                    pending.append((os.path.join(path, name), join_key(key_prefix, name)))
                    continue
                entry = self._listed(path, name, join_key(key_prefix, name), link=False)
                if entry is not None:
                    yield entry
            hint = name_hint(match)
            for name in listing.others if hint is None else listing.holding(hint):
                if match is not None and not match(name):
                    continue
                link = name in listing.links
                entry = self._listed(path, name, join_key(key_prefix, name), link=link)
                if entry is not None and not (recursive and entry.is_dir):
                    yield entry

    def _listing(self, path: str) -> Listing:
        return self._cache.listing(path) if self._cache is not None else read_listing(path)

    def _listed(self, folder: str, name: str, key: str, *, link: bool) -> Entry | None:
        """The entry of a listed name in the real folder ``folder``, read now; ``None`` for
        what is not served (gone, unreadable, a symlink loop, not a regular file or folder, a
        link out of the root)."""
        path = os.path.join(folder, name)
        if link:
            path, resolved = resolve(path)
            if resolved is None or not self._inside(path):
                return None  # gone, or never show what a link outside the root points at
            st = resolved
        else:
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                return None  # vanished or unreadable since the folder was read
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            return None
        return self._entry(key, st, path)

    def stat(self, key: str) -> Entry:
        real, st = self._resolved(key)  # the status of the file resolved, not of a later one
        if st is None:  # nothing there: os.stat says why
            try:
                st = os.stat(real)
            except OSError as exc:
                raise self._error(f"file {key!r}", exc) from None
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"no file {key!r}")
        return self._entry(key, st, real)

    def open(self, key: str, start: int = 0, end: int | None = None) -> ByteStream:
        """The bytes ``start`` to ``end`` of the file, from an open handle that closing the
        stream (or reading it to the end) closes. Symlinks inside the root are followed."""
        return FileChunks(self._open(key, exact=False), start, end)

    def open_local(self, key: str) -> BinaryIO:
        """The file that really lies at ``key`` (see ``LocalFile``): one reached through a
        symlink is refused, so a link swapped in after a check cannot redirect the open."""
        return self._open(key, exact=True)

    def _open(self, key: str, *, exact: bool) -> BinaryIO:
        """Open ``key`` without ever blocking, and check the descriptor opened: a regular file
        whose real path lies inside the root (and is ``key``'s own when ``exact``)."""
        self._path(key)  # never even open what lies outside the root (a device's side effects)
        path = os.path.join(self._root_text, key)
        try:
            # exact: a link at the last step is refused anyway, so do not even follow it
            fd = os.open(path, _OPEN_FLAGS | (os.O_NOFOLLOW if exact else 0))
        except OSError as exc:
            if exact and exc.errno == errno.ELOOP:  # O_NOFOLLOW met a link
                raise Forbidden(f"refused key {key!r}: it is reached through a link") from None
            raise self._error(f"file {key!r}", exc) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NotFound(f"no file {key!r}: not a regular file")
            real = opened_path(fd, path)
            if real is None:
                raise NotFound(f"no file {key!r}: it was replaced while being opened")
            if not self._inside(real):
                raise Forbidden(f"refused key {key!r}: it leads outside the source folder")
            if exact and real != path:
                raise Forbidden(f"refused key {key!r}: it is reached through a link (to {real!r})")
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def close(self) -> None:
        pass


def resolve(path: str) -> tuple[str, os.stat_result | None]:
    """``os.path.realpath(path)`` and the status of the file it names, both of the same file:
    from the kernel, which resolves the path once to open it (``O_PATH``: nothing is read, a
    FIFO does not block), names the opened file's real path in /proc and tells its status
    (a third of the cost of resolving each component in Python on every search). The status
    is ``None`` when nothing can be opened there (missing, a loop, not Linux); the path is then
    ``os.path.realpath``'s."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except (OSError, AttributeError):  # missing (realpath still answers), or not Linux
        return os.path.realpath(path), None
    try:
        real = opened_path(fd, path)
        return (real, os.fstat(fd)) if real is not None else (os.path.realpath(path), None)
    finally:
        os.close(fd)


_GONE = " (deleted)"


def opened_path(fd: int, path: str) -> str | None:
    """The real path of the file open as ``fd`` (opened from ``path``): from /proc, or where
    /proc cannot tell, ``path``'s real path if that is still the very file opened. ``None``
    when the file was removed or replaced since it was opened (no path names it any more)."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
        if real.startswith("/") and not real.endswith(_GONE):
            return real
    except OSError:
        pass
    real = os.path.realpath(path)
    try:
        same = os.path.samestat(os.fstat(fd), os.stat(real))
    except OSError:
        same = False
    return real if same else None


class FileChunks:
    """Iterates over a byte range of an open file, closing it when done or closed."""

    def __init__(self, handle: BinaryIO, start: int, end: int | None) -> None:
        self._handle = handle
        self._remaining = None if end is None else max(0, end - start)
        try:
            handle.seek(start)
        except BaseException:
            handle.close()
            raise

    def __iter__(self) -> FileChunks:
        return self

    def __next__(self) -> bytes:
        size = CHUNK_SIZE if self._remaining is None else min(CHUNK_SIZE, self._remaining)
        chunk = self._handle.read(size) if size and not self._handle.closed else b""
        if not chunk:
            self.close()
            raise StopIteration
        if self._remaining is not None:
            self._remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        """Close the file; safe to call more than once."""
        self._handle.close()


@hookimpl
def gateway_store_types() -> Sequence[StoreType]:
    return [
        StoreType(
            scheme="file",
            factory=LocalStore.from_url,
            description="a folder on this machine: file:/var/spool/asterisk/monitor",
            aliases=("local",),
        )
    ]
