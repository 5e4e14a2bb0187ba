"""A store for recordings inside a ZIP archive (``--path zip:/archive/2025-11.zip``).

Keys are the archive's member paths. Members are streamed: a byte range of a stored member is
read directly, a compressed one is decompressed up to the range's end and no further. Every
download opens the archive itself and ``MemberChunks.close`` closes it again, whether the
download was read to its end or abandoned (the gateway always closes what ``open`` returns).
"""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from gateway.errors import ConfigError, NotFound, Unavailable
from gateway.hookspecs import StoreType, hookimpl
from gateway.sourceurl import SourceURL
from gateway.storage import CHUNK_SIZE, ByteStream, Entry, NameFilter, check_key


class ZipStore:
    """Read-only view of one ZIP archive. Thread-safe: every read opens its own handle."""

    def __init__(self, archive: Path) -> None:
        self.archive = archive.expanduser().resolve()
        self.description = f"zip:{self.archive}"
        self._members: dict[str, zipfile.ZipInfo] | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: SourceURL) -> ZipStore:
        """The store factory: ``zip:/archive/2025-11.zip``. No options; touches no file yet."""
        if not url.location:
            raise ConfigError("a zip: source needs an archive, as in zip:/archive/2025-11.zip")
        url.check_options(())  # none known: a typo in an option must not pass silently
        return cls(Path(url.location))

    def _index(self) -> dict[str, zipfile.ZipInfo]:
        with self._lock:
            if self._members is None:
                if not self.archive.is_file():
                    raise ConfigError(f"the archive {self.archive} does not exist")
                try:
                    with zipfile.ZipFile(self.archive) as z:
                        members = {i.filename.rstrip("/"): i for i in z.infolist()}
                except (zipfile.BadZipFile, OSError) as exc:
                    raise Unavailable(f"{self.description}: {exc}") from None
                # Only members whose names are safe keys are visible at all.
                self._members = {k: i for k, i in members.items() if _is_safe(k)}
            return self._members

    def check(self) -> None:
        self._index()

    def _entry(self, key: str, info: zipfile.ZipInfo | None, is_dir: bool = False) -> Entry:
        when = datetime(*info.date_time, tzinfo=UTC) if info else datetime.fromtimestamp(0, UTC)
        return Entry(key, 0 if is_dir or info is None else info.file_size, when, is_dir)

    def list(
        self, prefix: str, *, recursive: bool = False, match: NameFilter | None = None
    ) -> Iterator[Entry]:
        check_key(prefix, allow_root=True)
        members = self._index()
        base = f"{prefix}/" if prefix else ""
        folders: set[str] = set()
        found = prefix == ""
        for key, info in sorted(members.items()):
            if not key.startswith(base):
                continue
            found = True
            rest = key[len(base) :]
            if info.is_dir():
                continue
            if "/" in rest and not recursive:
                folders.add(rest.split("/", 1)[0])
            elif match is None or match(rest.rsplit("/", 1)[-1]):
                yield self._entry(key, info)
        if not found:
            raise NotFound(f"no folder {prefix!r}")
        for name in sorted(folders):
            yield self._entry(base + name, None, is_dir=True)

    def stat(self, key: str) -> Entry:
        check_key(key)
        info = self._index().get(key)
        if info is None or info.is_dir():
            raise NotFound(f"no file {key!r}")
        return self._entry(key, info)

    def open(self, key: str, start: int = 0, end: int | None = None) -> ByteStream:
        entry = self.stat(key)  # NotFound before the first byte
        end = entry.size if end is None else min(end, entry.size)
        try:
            archive = zipfile.ZipFile(self.archive)
        except (zipfile.BadZipFile, OSError) as exc:
            raise Unavailable(f"{self.description}: {exc}") from None
        try:
            member = archive.open(key)
            member.seek(start)
        except BaseException:
            archive.close()
            raise
        return MemberChunks(archive, member, max(0, end - start))

    def close(self) -> None:
        pass


class MemberChunks:
    """A byte range of one member, in chunks. Holds the archive's file handle until it is
    closed or read to the end.

    A class rather than a generator: closing a generator that never started does not run its
    ``finally``, so a download abandoned before its first chunk would leak the handle.
    """

    def __init__(self, archive: zipfile.ZipFile, member: IO[bytes], length: int) -> None:
        self._archive: zipfile.ZipFile | None = archive
        self._member = member
        self._remaining = length

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = b""
        if self._archive is not None and self._remaining > 0:
            chunk = self._member.read(min(CHUNK_SIZE, self._remaining))
        if not chunk:
            self.close()
            raise StopIteration
        self._remaining -= len(chunk)
        return chunk

    def close(self) -> None:
        """Close the member and the archive; safe to call more than once."""
        archive, self._archive = self._archive, None
        if archive is not None:
            self._member.close()
            archive.close()


def _is_safe(key: str) -> bool:
    try:
        check_key(key)
    except Exception:
        return False
    return True


@hookimpl
def gateway_store_types() -> Sequence[StoreType]:
    return [StoreType("zip", ZipStore.from_url, "recordings inside a ZIP archive: zip:FILE.zip")]
