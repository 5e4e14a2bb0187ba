"""Running the web service under waitress (``gateway serve``, after its settings are read).

At start-up every source is checked: a missing folder or bucket is a configuration error (exit
2); an unreachable store only warns, since a NAS that is down now may be back before the first
search (which then answers 503 until it is).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterable
from types import FrameType
from typing import Any, BinaryIO

import click
import waitress
from waitress.buffers import ReadOnlyFileBasedBuffer
from waitress.channel import HTTPChannel

from gateway.configuration import ServerSettings
from gateway.errors import ConfigError, Unavailable
from gateway.tenants import install_reload
from gateway.web.accesslog import AccessLog, Environ, RequestObserver, StartResponse, WSGIApp
from gateway.web.app import create_app
from gateway.web.audit import AuditLog
from gateway.web.config import MAX_BODY, WebConfig
from gateway.web.malloc import limit_malloc_arenas

# Local downloads go from the file to the socket with sendfile(2), as nginx serves them: the
# bytes never enter this process. waitress has no sendfile of its own: it reads its
# wsgi.file_wrapper in pieces as large as the socket's send buffer, copies each into the socket,
# and reads again the part a full socket did not take. Measured with bench/web.py (50 MB, the
# server's CPU seconds per GB sent, next to nginx's 0.13): 0.76-0.98 before, 0.37-0.44 with
# sendfile. A few small pieces add it while waitress keeps its own buffering, ordering and
# accounting (SendfileChannel.send is the only method of waitress's that is replaced):
# - SendfileBuffer, the server's wsgi.file_wrapper (_OfferSendfile installs it), offers a
#   FileSlice instead of bytes when the file it wraps has a descriptor (a FileRange, through
#   the access log's counting wrapper);
# - SendfileChannel.send turns a FileSlice into one sendfile call.
# A file system that cannot sendfile falls back to waitress's reads, for that download.
#
# The socket's send buffer is left to Linux's autotuning (up to net.ipv4.tcp_wmem's maximum,
# 4 MiB by default): it is kernel memory, not this process's, and a larger buffer wakes the
# server less often per MB (0.25-0.30 CPU s/GB instead of 0.37-0.44 with the fixed 256 KiB we
# used to set). waitress also sized each piece it copies out of its in-memory buffers (other
# stores' streams, which do go through the process) by that buffer as it was at accept:
# READ_BYTES fixes that piece at 256 KiB, whatever the kernel does with the buffer.
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


class _OfferSendfile:
    """The outermost middleware: the server's file wrapper becomes a SendfileBuffer."""

    def __init__(self, app: WSGIApp) -> None:
        self._app = app

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("wsgi.file_wrapper") is ReadOnlyFileBasedBuffer:
            environ["wsgi.file_wrapper"] = SendfileBuffer
        return self._app(environ, start_response)


def web_config(settings: ServerSettings) -> WebConfig:
    configured = settings.configured
    return WebConfig(
        sources=configured.sources,
        settings=configured.settings,
        token=settings.token,
        signer=settings.signer,
        link_ttl=settings.link_ttl,
        public_url=settings.public_url,
        layout=settings.layout,
        tenants=settings.tenants,
        metrics_token=settings.metrics_token,
        redirect_to_store=settings.redirect_to_store,
        searcher=configured.searcher,
    )


def proxy_settings(trusted_proxy: str) -> dict[str, Any]:
    """waitress settings: forwarded headers count only when they come from the proxy."""
    if trusted_proxy.lower() in ("", "none"):
        return {"clear_untrusted_proxy_headers": True}
    return {
        "trusted_proxy": trusted_proxy,
        "trusted_proxy_count": 1,
        "trusted_proxy_headers": {"x-forwarded-proto", "x-forwarded-host", "x-forwarded-for"},
        "clear_untrusted_proxy_headers": True,
    }


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(settings: ServerSettings) -> None:
    """Listen and serve until SIGTERM or Ctrl-C; the caller closes ``settings``."""
    limit_malloc_arenas()  # before any worker thread exists
    for source in settings.configured.sources:
        try:
            source.check()
        except Unavailable as exc:
            logging.getLogger("gateway").warning("%s (serving anyway)", exc)
    audit = AuditLog(settings.audit) if settings.audit is not None else None
    _run(settings, web_config(settings), audit)


def _run(settings: ServerSettings, config: WebConfig, audit: AuditLog | None) -> None:
    access = logging.getLogger("gateway.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    observers: list[RequestObserver] = [config.metrics]
    if audit is not None:
        observers.append(audit)
    try:
        server = waitress.create_server(
            _OfferSendfile(AccessLog(create_app(config), observers)),
            host=settings.host,
            port=settings.port,
            threads=settings.threads,
            ident="recording-gateway",
            max_request_body_size=MAX_BODY * 16,
            **proxy_settings(settings.trusted_proxy),
        )
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.bind_to}: {exc.strerror}") from None
    # Not a create_server keyword; applied to each accepted connection.
    server.adj.socket_options = SOCKET_OPTIONS
    server.channel_class = SendfileChannel
    if config.tenants is not None:
        install_reload(config.tenants)  # before the banner: SIGHUP never kills us
    sources = ", ".join(s.id for s in config.sources)
    click.echo(
        f"gateway: serving on {_address(server)} | sources: {sources} | "
        f"layout: {_layout_text(config)} | links valid {config.link_ttl}s"
        + (f" at {config.public_url}" if config.public_url else ""),
    )
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    click.echo("gateway: stopped")


def _layout_text(config: WebConfig) -> str:
    """``--layout``, or what the sources' paths say (their placeholders are their layout)."""
    if config.layout:
        return config.layout
    patterned = any("%" in source.id for source in config.sources)
    return "placeholders of each path" if patterned else "flat"


def _address(server: Any) -> str:
    listening = getattr(server, "effective_listen", None) or [
        (server.effective_host, server.effective_port)
    ]
    return " and ".join(
        f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"
        for host, port in listening
    )
