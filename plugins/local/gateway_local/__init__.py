"""Local-disk store: recordings in a folder of this machine (``file:/var/spool/asterisk/monitor``).

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
from gateway.storage import CHUNK_SIZE, ByteStream, Entry, NameFilter, check_key, join_key


class LocalStore:
    """Files below one local folder. Thread-safe: it keeps no state but its root."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()
        self.description = f"file:{self.root}"

    @classmethod
    def from_url(cls, url: SourceURL) -> LocalStore:
        """The store factory: ``file:/folder``, ``file:///folder`` or ``file://localhost/folder``
        (a bare ``--path /folder`` arrives as ``file:/folder``). It takes no options."""
        location = url.location
        if url.has_authority:  # file:///abs or file://localhost/abs
            host, _, rest = location[2:].partition("/")
            if host not in ("", "localhost"):
                raise ConfigError(f"file: sources must be local, not on host {host!r}")
            location = "/" + rest
        if not location:
            raise ConfigError("a file: source needs a folder, as in file:/var/spool/recordings")
        url.check_options(())
        return cls(Path(location))

    def check(self) -> None:
        if not self.root.is_dir():
            raise ConfigError(f"the source folder {self.root} does not exist")

    def _path(self, key: str, *, allow_root: bool = False) -> Path:
        parts = check_key(key, allow_root=allow_root)
        resolved = self.root.joinpath(*parts).resolve()
        if resolved != self.root and not resolved.is_relative_to(self.root):
            raise Forbidden(f"refused key {key!r}: it leads outside the source folder")
        return resolved

    def _entry(self, key: str, st: os.stat_result) -> Entry:
        mtime = datetime.fromtimestamp(st.st_mtime, UTC)
        return Entry(key, st.st_size, mtime, stat.S_ISDIR(st.st_mode))

    def list(
        self, prefix: str, *, recursive: bool = False, match: NameFilter | None = None
    ) -> Iterator[Entry]:
        folder = self._path(prefix, allow_root=True)
        pending = [(folder, prefix)]
        while pending:
            path, key_prefix = pending.pop()
            try:
                with os.scandir(path) as it:
                    children = list(it)
            except (FileNotFoundError, NotADirectoryError):
                if path == folder:
                    raise NotFound(f"no folder {prefix!r}") from None
                continue
            except PermissionError:
                if path == folder:
                    raise Forbidden(f"cannot read the folder {prefix!r}") from None
                continue
            except OSError as exc:
                raise Unavailable(f"{self.description}: {exc.strerror}") from None
            for child in children:
                try:
                    is_dir = child.is_dir(follow_symlinks=False)
                    if is_dir and recursive:
                        pending.append((Path(child.path), join_key(key_prefix, child.name)))
                        continue
                    if not is_dir and match is not None and not match(child.name):
                        continue
                    entry = self._listed(child, join_key(key_prefix, child.name))
                except OSError:
                    continue  # vanished or unreadable while listing
                if entry is not None:
                    yield entry

    def _listed(self, child: os.DirEntry[str], key: str) -> Entry | None:
        if child.is_symlink():
            target = Path(child.path).resolve()
            if not target.is_relative_to(self.root):
                return None  # never show what a link outside the root points at
            st = target.stat()
        else:
            st = child.stat(follow_symlinks=False)
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
