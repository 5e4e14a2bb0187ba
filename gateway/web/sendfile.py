"""sendfile(2) for local downloads, inside waitress (``SendfileChannel``, ``SendfileBuffer``).

Local downloads go from the file to the socket with sendfile(2), as nginx serves them: the
bytes never enter this process. waitress has no sendfile of its own: it reads its
wsgi.file_wrapper in pieces as large as the socket's send buffer, copies each into the socket,
and reads again the part a full socket did not take. Measured with bench/web.py (50 MB, the
server's CPU seconds per GB sent, next to nginx's 0.13): 0.76-0.98 before, 0.37-0.44 with
sendfile. A few small pieces add it while waitress keeps its own buffering, ordering and
accounting (SendfileChannel.send is the only method of waitress's that is replaced):
- SendfileBuffer, the server's wsgi.file_wrapper (OfferSendfile installs it), offers a
  FileSlice instead of bytes when the file it wraps has a descriptor (a FileRange, through
  the access log's counting wrapper);
- SendfileChannel.send turns a FileSlice into one sendfile call.
A file system that cannot sendfile falls back to waitress's reads, for that download.

The socket's send buffer is left to Linux's autotuning (up to net.ipv4.tcp_wmem's maximum,
4 MiB by default): it is kernel memory, not this process's, and a larger buffer wakes the
server less often per MB (0.25-0.30 CPU s/GB instead of 0.37-0.44 with the fixed 256 KiB we
used to set). waitress also sized each piece it copies out of its in-memory buffers (other
stores' streams, which do go through the process) by that buffer as it was at accept:
READ_BYTES fixes that piece at 256 KiB, whatever the kernel does with the buffer.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from collections.abc import Iterable
from typing import Any, BinaryIO

from waitress.buffers import ReadOnlyFileBasedBuffer
from waitress.channel import HTTPChannel

from gateway.web.accesslog import Environ, StartResponse, WSGIApp

SOCKET_OPTIONS = [
    (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
]
READ_BYTES = 256 * 1024

_CANNOT_SENDFILE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})
_DISCONNECTED = frozenset(
    {
        errno.ECONNRESET,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EBADF,
    }
)


class FileSlice:
    """``count`` bytes of the buffer's file from ``offset``: what SendfileChannel sends."""

    __slots__ = ("buffer", "count", "offset")

    def __init__(self, buffer: SendfileBuffer, offset: int, count: int) -> None:
        self.buffer = buffer
        self.offset = offset
        self.count = count


class SendfileBuffer(ReadOnlyFileBasedBuffer):  # type: ignore[misc]
    """waitress's file wrapper, which offers its file as FileSlices once ``fd`` is set."""

    def __init__(self, file: BinaryIO, block_size: int = 32768) -> None:
        super().__init__(file, block_size)
        self.fd: int | None = None
        self._offset = 0
        with contextlib.suppress(AttributeError, OSError, ValueError):
            self.fd = file.fileno()  # none (not a real file): waitress reads it

    def prepare(self, size: int | None = None) -> int:
        remain = int(super().prepare(size))
        if self.fd is not None:
            self._offset = self.file.tell()
        return remain

    def get(self, numbytes: int = -1, skip: bool = False) -> bytes | FileSlice:
        if self.fd is None or skip:
            return bytes(super().get(numbytes, skip))
        # all that is left: the kernel takes what fits in the socket and says how much
        return FileSlice(self, self._offset, self.remain)

    def skip(self, numbytes: int, allow_prune: int = 0) -> None:
        if self.fd is None:
            super().skip(numbytes, allow_prune)
            return
        self._offset += numbytes
        self.remain -= numbytes
        # Keep the file object where the sent bytes end, and read nothing from there: the
        # access log's wrapper counts a download's bytes by how far its file was read.
        self.file.seek(self._offset)
        self.file.read(0)

    def stop_sendfile(self) -> None:
        """Read and copy from here on (the file's system cannot sendfile)."""
        self.fd = None
        self.file.seek(self._offset)


class SendfileChannel(HTTPChannel):  # type: ignore[misc]
    """waitress's connection, sending a FileSlice with sendfile(2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # waitress sized its reads by the socket's buffer as it was at accept; see READ_BYTES
        self.sendbuf_len = READ_BYTES

    def send(self, data: bytes | FileSlice, do_close: bool = True) -> int:
        if not isinstance(data, FileSlice):
            return int(super().send(data, do_close))
        buffer = data.buffer
        if buffer.fd is None:  # stopped since the slice was made
            return 0
        try:
            sent = os.sendfile(self.socket.fileno(), buffer.fd, data.offset, data.count)
        except BlockingIOError:
            return 0  # the socket is full: waitress waits until it can write again
        except OSError as exc:
            if exc.errno in _CANNOT_SENDFILE:
                buffer.stop_sendfile()  # waitress tries again, and now reads
                return 0
            if exc.errno in _DISCONNECTED:
                if do_close:
                    self.handle_close()
                return 0
            raise
        if sent == 0:
            # The file ended before its length (cut while being served): what was promised
            # cannot be sent, so end the connection; the client sees the short body.
            logging.getLogger("gateway").warning("download cut short: the file got shorter")
            self.handle_close()
        return sent


class OfferSendfile:
    """The outermost middleware: the server's file wrapper becomes a SendfileBuffer."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("wsgi.file_wrapper") is ReadOnlyFileBasedBuffer:
            environ["wsgi.file_wrapper"] = SendfileBuffer
        return self._app(environ, start_response)
