"""One access-log line per request, written when the response is finished:

    2026-03-09T10:15:02Z 127.0.0.1 GET /files/<redacted>/in-200.wav 206 65536 3.2ms

The signed part of a link and the query string (which may carry a token) are never written.
A WSGI middleware, so it counts the bytes of streamed bodies too, including the ones that go
through the server's ``wsgi.file_wrapper``.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import quote

log = logging.getLogger("gateway.access")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_SIGNED = re.compile(r"^/files/[^/]*(/|$)")
_MAX_ROUTE = 200


def redact(path: str) -> str:
    """The path to log: the signed part of a link replaced, odd characters escaped."""
    path = _SIGNED.sub(lambda m: "/files/<redacted>" + m.group(1), path)
    safe = quote(path, safe="/<>._-~:@!$&'()*+,;=")
    return safe if len(safe) <= _MAX_ROUTE else safe[:_MAX_ROUTE] + "..."


class _Request:
    """What is known about one request; writes its line once, when its body is done."""

    def __init__(self, environ: Environ) -> None:
        self.started = time.monotonic()
        self.client = str(environ.get("REMOTE_ADDR") or "-")
        self.method = str(environ.get("REQUEST_METHOD") or "-")
        self.route = redact(str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")))
        self.status = "-"
        self.sent = 0
        self._done = False
        self._lock = threading.Lock()

    def finish(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        ms = (time.monotonic() - self.started) * 1000
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        log.info(
            "%s %s %s %s %s %d %.1fms",
            when,
            self.client,
            self.method,
            self.route,
            self.status,
            self.sent,
            ms,
        )


class _CountedFile:
    """Passes a file to the server's file wrapper and notes how far it was read."""

    def __init__(self, file: BinaryIO, request: _Request) -> None:
        self._file = file
        self._request = request
        self._start = file.tell()

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self._request.sent = max(self._request.sent, self._file.tell() - self._start)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._request.finish()


class _CountedBody:
    def __init__(self, body: Iterable[bytes], request: _Request) -> None:
        self._body = body
        self._iter: Iterator[bytes] = iter(body)
        self._request = request

    def __iter__(self) -> _CountedBody:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._iter)
        self._request.sent += len(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._request.finish()


class AccessLog:
    def __init__(self, app: WSGIApp) -> None:
        self._app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = _Request(environ)
        used_wrapper = False
        server_wrapper = environ.get("wsgi.file_wrapper")
        if server_wrapper is not None:

            def file_wrapper(file: BinaryIO, block_size: int = 8192) -> Any:
                nonlocal used_wrapper
                used_wrapper = True
                return server_wrapper(_CountedFile(file, request), block_size)

            environ["wsgi.file_wrapper"] = file_wrapper

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            request.status = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)

        try:
            body = self._app(environ, start)
        except BaseException:
            request.finish()
            raise
        if used_wrapper:
            return body  # the server's own object, so it can send the file its fast way
        return _CountedBody(body, request)
