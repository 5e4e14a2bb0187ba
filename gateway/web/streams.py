"""Response bodies that stream: a byte range of a local file, and a store's chunk iterator.

Neither ever holds more than one chunk in memory.
"""

from __future__ import annotations

import logging
import os
from typing import BinaryIO

from gateway.storage import ByteStream

log = logging.getLogger("gateway")


class FileRange:
    """A read-only view of bytes ``start`` to ``end`` (exclusive) of an open file.

    Seekable, so a server's ``wsgi.file_wrapper`` (waitress's reads, peeks and seeks back) can
    use it; reads never go past ``end``, so a server that just reads until EOF is also right.
    """

    def __init__(self, handle: BinaryIO, start: int, end: int) -> None:
        self._handle = handle
        self._end = end
        try:
            handle.seek(start)
        except BaseException:
            handle.close()
            raise

    def read(self, size: int | None = -1, /) -> bytes:
        left = self._end - self._handle.tell()
        if left <= 0:
            return b""
        return self._handle.read(left if size is None or size < 0 else min(size, left))

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            return self._handle.seek(self._end + offset, os.SEEK_SET)
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        """The open file's descriptor, so the server can send the range with ``sendfile``."""
        return self._handle.fileno()

    def close(self) -> None:
        self._handle.close()


class ChunkStream:
    """Iterates over a store's chunks, at most ``length`` bytes, and closes them when done.

    The first chunk is read when the stream is made, inside the responder: a store that fails
    before sending anything (its server just went down) gets the JSON error answer (503), not
    the web server's bare 500. A failure after that can no longer change the status: the body
    ends early, the server closes the connection because the length falls short (so the client
    knows), and one line is logged.
    """

    def __init__(self, chunks: ByteStream, length: int) -> None:
        self._chunks = chunks
        self._left = length
        try:
            self._first: bytes | None = next(chunks)
        except StopIteration:
            self._first = None
            self._left = 0
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> ChunkStream:
        return self

    def __next__(self) -> bytes:
        if self._left <= 0:
            self.close()
            raise StopIteration
        if self._first is not None:
            chunk, self._first = self._first, None
        else:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self.close()
                raise
            except Exception as exc:
                log.warning("download cut short after an error of the store: %s", exc)
                self.close()
                raise StopIteration from None
        if len(chunk) > self._left:
            chunk = chunk[: self._left]
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        self._chunks.close()
