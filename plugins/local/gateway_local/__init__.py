"""Local-disk store: recordings in a folder of this machine (``file:/var/spool/asterisk/monitor``).

Folder listings are kept between searches while the folder provably has not changed
(``gateway_local.listing``); sizes and times are always read fresh.

Registered through the ``gateway.plugins`` entry point like any third-party store. Keys never
leave the root: besides the shared key rules, any path whose resolved form (after symlinks)
lies outside the root is refused, and listings skip symlinks that point outside it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from gateway.errors import ConfigError, Forbidden, NotFound, Unavailable
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


class LocalStore:
    """Files below one local folder. Thread-safe: it keeps no state but its root and the
    listings of folders it read (``gateway_local.listing``)."""

    def __init__(self, root: Path, *, listing_cache: bool = True) -> None:
        self.root = root.expanduser().resolve()
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
        parts = check_key(key, allow_root=allow_root)
        real = real_path(os.path.join(self._root_text, *parts))
        if not self._inside(real):
            raise Forbidden(f"refused key {key!r}: it leads outside the source folder")
        return real

    def _inside(self, real: str) -> bool:
        """Whether a real path (symlinks resolved) is the root or lies below it."""
        return real == self._root_text or real.startswith(self._root_inside)

    def _entry(self, key: str, st: os.stat_result) -> Entry:
        mtime = datetime.fromtimestamp(st.st_mtime, UTC)
        return Entry(key, st.st_size, mtime, stat.S_ISDIR(st.st_mode))

    def list(
        self, prefix: str, *, recursive: bool = False, match: NameFilter | None = None
    ) -> Iterator[Entry]:
        pending = [(self._real(prefix, allow_root=True), prefix)]
        while pending:
            path, key_prefix = pending.pop()
            try:
                listing = self._listing(path)
            except (FileNotFoundError, NotADirectoryError):
                if key_prefix == prefix:
                    raise NotFound(f"no folder {prefix!r}") from None
                continue
            except PermissionError:
                if key_prefix == prefix:
                    raise Forbidden(f"cannot read the folder {prefix!r}") from None
                continue
            except OSError as exc:
                raise Unavailable(f"{self.description}: {exc.strerror}") from None
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
                if entry is not None:
                    yield entry

    def _listing(self, path: str) -> Listing:
        return self._cache.listing(path) if self._cache is not None else read_listing(path)

    def _listed(self, folder: str, name: str, key: str, *, link: bool) -> Entry | None:
        """The entry of a listed name, read now; ``None`` for what is not served (gone,
        unreadable, not a regular file or folder, a link out of the root)."""
        path = os.path.join(folder, name)
        try:
            if link:
                target = real_path(path)
                if not self._inside(target):
                    return None  # never show what a link outside the root points at
                st = os.stat(target)
            else:
                st = os.stat(path, follow_symlinks=False)
        except OSError:
            return None  # vanished or unreadable since the folder was read
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
            return None
        return self._entry(key, st)

    def stat(self, key: str) -> Entry:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no file {key!r}") from None
        except PermissionError:
            raise Forbidden(f"cannot read {key!r}") from None
        except OSError as exc:  # a name too long for the file system holds no file either
            if exc.errno == errno.ENAMETOOLONG:
                raise NotFound(f"no file {key!r}") from None
            raise Unavailable(f"{self.description}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise NotFound(f"no file {key!r}")
        return self._entry(key, st)

    def local_path(self, key: str) -> Path:
        self.stat(key)
        return self._path(key)

    def open(self, key: str, start: int = 0, end: int | None = None) -> ByteStream:
        """The bytes ``start`` to ``end`` of the file, from an open handle that closing the
        stream (or reading it to the end) closes."""
        return FileChunks(self.open_local(key), start, end)

    def open_local(self, key: str) -> BinaryIO:
        path = self.local_path(key)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"no file {key!r}") from None
        except PermissionError:
            raise Forbidden(f"cannot read {key!r}") from None
        except OSError as exc:
            raise Unavailable(f"{self.description}: {exc.strerror}") from None

    def close(self) -> None:
        pass


def real_path(path: str) -> str:
    """``os.path.realpath``, from the kernel when it can tell: it resolved the path already
    to open it (Linux names an open file's real path in /proc), a third of the cost of
    resolving each component in Python on every search."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except (OSError, AttributeError):  # missing (realpath still answers), or not Linux
        return os.path.realpath(path)
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return os.path.realpath(path)
    finally:
        os.close(fd)
    return real if real.startswith("/") else os.path.realpath(path)


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
