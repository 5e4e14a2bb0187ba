"""One access-log line per request, written when the response is finished:

    2026-03-09T10:15:02Z 127.0.0.1 GET /files/<redacted>/in-200.wav 206 65536 3.2ms

The signed part of a link and the query string (which may carry a token) are never written.
A WSGI middleware, so it counts the bytes of streamed bodies too, including the ones that go
through the server's ``wsgi.file_wrapper``. Other observers (the audit log, the metrics) get
the same finished-request record; resources add what they know (call id, tenant, file, range)
to ``environ[DETAILS]``.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol
from urllib.parse import quote

log = logging.getLogger("gateway.access")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

DETAILS = "gateway.details"
"""``environ`` key of a dict where resources note what the request was about."""

_SIGNED = re.compile(r"^/files/[^/]*(/|$)")
_MAX_ROUTE = 200


def redact(path: str) -> str:
    """The path to log: the signed part of a link replaced, odd characters escaped."""
    path = _SIGNED.sub(lambda m: "/files/<redacted>" + m.group(1), path)
    safe = quote(path, safe="/<>._-~:@!$&'()*+,;=")
    return safe if len(safe) <= _MAX_ROUTE else safe[:_MAX_ROUTE] + "..."


def client_address(environ: Environ) -> str:
    """The client's address for the logs; ``-`` unless it is an IP address (behind a trusted
    proxy it comes from ``X-Forwarded-For``, which must not write anything else there)."""
    value = str(environ.get("REMOTE_ADDR") or "")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return "-"


class RequestRecord:
    """What is known about one request; observers hear of it once, when its body is done."""

    def __init__(self, environ: Environ, observers: tuple[RequestObserver, ...]) -> None:
        self.started = time.monotonic()
        self.at = datetime.now(UTC)
        self.client = client_address(environ)
        self.method = str(environ.get("REQUEST_METHOD") or "-")
        self.path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        self.route = redact(self.path)
        self.status = "-"
        self.sent = 0
        self.seconds = 0.0
        self.details: dict[str, Any] = {}
        environ[DETAILS] = self.details
        self._observers = observers
        self._done = False
        self._lock = threading.Lock()
        for observer in observers:
            observer.started(self)

    @property
    def when(self) -> str:
        """When the request arrived, ISO 8601 UTC to the second (as every log line writes it)."""
        return self.at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def finish(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self.seconds = time.monotonic() - self.started
        for observer in self._observers:
            try:
                observer.finished(self)
            except Exception:  # an observer must never break a response
                log.exception("request observer %r failed", observer)


class RequestObserver(Protocol):
    """Hears of every request when it starts and when its response is finished."""

    def started(self, request: RequestRecord) -> None: ...

    def finished(self, request: RequestRecord) -> None: ...


class AccessLine:
    """The access log: one line per finished request."""

    def started(self, request: RequestRecord) -> None:
        pass

    def finished(self, request: RequestRecord) -> None:
        log.info(
            "%s %s %s %s %s %d %.1fms",
            request.when,
            request.client,
            request.method,
            request.route,
            request.status,
            request.sent,
            request.seconds * 1000,
        )


class _CountedFile:
    """Passes a file to the server's file wrapper and notes how far it was read."""

    def __init__(self, file: BinaryIO, request: RequestRecord) -> None:
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

    def fileno(self) -> int:
        """The file's descriptor, for a server that sends it with ``sendfile``."""
        return self._file.fileno()

    def seekable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._request.finish()


class _CountedBody:
    def __init__(self, body: Iterable[bytes], request: RequestRecord) -> None:
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
    """The middleware: the access line, then each extra observer, for every request."""

    def __init__(self, app: WSGIApp, observers: Iterable[RequestObserver] = ()) -> None:
        self._app = app
        self._observers = (AccessLine(), *observers)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        request = RequestRecord(environ, self._observers)
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
