"""A graceful stop: on SIGTERM or Ctrl-C, leave the load balancer, then finish what is running.

Behind a load balancer (deploy/Caddyfile with two upstreams) a stopping instance must not fail
a request. Caddy 2.6 (Debian's) cannot send a search to another upstream once it has tried
one, even when the connection was refused (it loses the request's body:
caddyserver/caddy#5454), so a stopping gateway first makes sure Caddy no longer picks it:

1. notice: if ``/healthz`` was asked twice in the last NOTICE_IF_CHECKED seconds (a load
   balancer checks it: Caddy's active health check asks every 2 s), ``/healthz`` answers 503
   from now on, and everything else is still served, until a 503 was answered and
   NOTICE_MARGIN more seconds passed (at most NOTICE_LIMIT seconds). Nobody checks (or once,
   as a federation hub's probe at its start): no notice;
2. the listening sockets close (connections the kernel had queued are accepted first, not
   reset): a new connection is refused;
3. a request still arriving on an open connection is answered, with ``Connection: close``;
   requests and downloads in progress run to their end; a connection idle for IDLE_GRACE
   seconds is closed; a download whose client stopped reading (nothing sent for STALLED
   seconds though something is waiting to be) is cut: it would not finish in time anyway,
   and the player asks again with a range, which the proxy sends to another instance;
4. the process exits when no connection is left, or ``stop_timeout`` seconds after the
   signal, when the connections still open are cut (and counted in the last line).

A second signal stops at once, and so does the first one with ``stop_timeout`` 0.

How: GracefulStop runs waitress's own loop (``wasyncore.loop``) one turn at a time, so that
between turns it can look at its connections (``HTTPChannel``) from the loop's thread, as
waitress itself does; the signal handler only sets a flag and wakes the loop through
waitress's trigger (a pipe; ``pull_trigger`` without a callback takes no lock, so it is safe
in a handler). DrainingChannel is the only waitress method replaced, to ask for
``Connection: close``.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import time
from collections.abc import Iterable
from types import FrameType
from typing import Any

import click
from waitress import wasyncore
from waitress.channel import HTTPChannel

from gateway.web.accesslog import Environ, StartResponse, WSGIApp
from gateway.web.capacity import listeners
from gateway.web.sendfile import SendfileChannel

NOTICE_IF_CHECKED = 10.0
"""``/healthz`` asked twice within this many seconds before the signal: a load balancer checks
this gateway."""
NOTICE_LIMIT = 5.0
"""Longest wait (seconds) for the load balancer to see ``/healthz`` answer 503 (deploy/Caddyfile
asks every 2 s)."""
NOTICE_MARGIN = 0.5
"""Seconds still served after the 503: for requests the load balancer had already sent."""
IDLE_GRACE = 0.5
"""Seconds an open connection with nothing to do is kept while stopping: a request that follows
the last answer closely is still answered (with ``Connection: close``). A load balancer that
was told (the notice) sends nothing more; other clients' next request may meet the closed
connection, as with any server's idle timeout."""
STALLED = 5.0
"""Seconds without a byte taken by a client that has an answer waiting, after which its
connection is cut while stopping."""
DRAIN_TURN = 0.1
"""Longest wait of the loop while stopping, so connections and time limits are looked at
often (waitress's own is 1 s)."""
THREADS_TIMEOUT = 5
"""Seconds the worker threads get to notice that their connections were closed."""

_STOPPING = json.dumps({"status": "ERROR", "error": "stopping"}).encode()


class DrainingChannel(SendfileChannel):
    """A connection that, once ``draining`` is set, asks waitress to close it after the
    request it serves next (the answer then carries ``Connection: close``)."""

    draining = False
    """Set from the loop's thread when the listening sockets close; read by worker threads."""

    def service(self) -> None:
        if self.draining and self.requests:
            # waitress decides from the request's Connection header (task.py); the
            # application sees the same, which it does not use
            self.requests[0].headers["CONNECTION"] = "close"
        super().service()


class GracefulStop:
    """Runs a waitress server until a signal, then stops it gracefully (see the module)."""

    def __init__(self, stop_timeout: float) -> None:
        """``stop_timeout`` bounds the whole stop, in seconds (0: stop at once)."""
        self._stop_timeout = stop_timeout
        self._stopping = False
        self._checked = (-math.inf, -math.inf)  # when /healthz was asked, the last two times
        self._told: float | None = None  # when /healthz first answered 503
        self._cut = 0
        self._server: Any = None

    def app(self, app: WSGIApp) -> WSGIApp:
        """``app``, with ``/healthz`` answering 503 once a stop has begun."""

        def with_health(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == "/healthz":
                now = time.monotonic()
                self._checked = (self._checked[1], now)
                if self._stopping:
                    if self._told is None:
                        self._told = now
                    start_response(
                        "503 Service Unavailable",
                        [
                            ("Content-Type", "application/json"),
                            ("Content-Length", str(len(_STOPPING))),
                            ("Cache-Control", "no-store"),
                        ],
                    )
                    return [_STOPPING]
            return app(environ, start_response)

        return with_health

    def install(self, server: Any) -> None:
        """Handle SIGTERM and SIGINT (Ctrl-C) from now on for ``server`` (what
        ``waitress.create_server`` returned, with DrainingChannel as its listeners'
        ``channel_class``); call from the main thread."""
        self._server = server
        self._listeners = listeners(server)
        self._map: dict[int, Any] = self._listeners[0]._map
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping or self._stop_timeout <= 0:
            raise KeyboardInterrupt  # out of the loop, wherever it is: stop at once
        self._stopping = True
        self._listeners[0].pull_trigger()  # wakes the loop now, not at its next timeout

    def run(self) -> None:
        """Serve until a signal, stop gracefully, close everything; print a line when the
        listening sockets close and one at the end."""
        adj = self._server.adj
        try:
            while not self._stopping:
                self._turn(adj.asyncore_loop_timeout)
            signalled = time.monotonic()
            deadline = signalled + self._stop_timeout
            notice = self._notice(signalled, deadline)
            self._begin(deadline, notice)
            while self._connections() and time.monotonic() < deadline:
                self._turn(DRAIN_TURN)
                self._close_done()
        except KeyboardInterrupt:
            pass
        finally:
            self._cut += len(self._connections())
            self._close()
        if self._cut:
            _say(f"gateway: stopped, {self._cut} connection(s) cut before they finished")
        else:
            _say("gateway: stopped")

    def _turn(self, timeout: float) -> None:
        adj = self._server.adj
        wasyncore.loop(timeout=timeout, use_poll=adj.asyncore_use_poll, map=self._map, count=1)

    def _notice(self, signalled: float, deadline: float) -> str:
        """Serve on while a load balancer that checks ``/healthz`` learns that we stop; say
        how that went."""
        if signalled - self._checked[0] > NOTICE_IF_CHECKED:
            return ""
        limit = min(deadline, signalled + NOTICE_LIMIT)
        while (now := time.monotonic()) < limit:
            if self._told is not None and now >= self._told + NOTICE_MARGIN:
                return f"/healthz answered 503 for {now - signalled:.1f}s; "
            self._turn(DRAIN_TURN)
        return f"/healthz was not asked in {now - signalled:.1f}s; "

    def _begin(self, deadline: float, notice: str) -> None:
        """Stop listening (accepting what the kernel queued first), mark every connection
        as draining."""
        for listener in self._listeners:
            while True:  # accept_in_bursts: up to 64 a call
                before = len(self._map)
                listener.handle_accept()
                if len(self._map) == before:
                    break
            # not listener.close(): that closes the trigger the workers still pull
            wasyncore.dispatcher.close(listener)
        open_now = self._connections()
        for channel in open_now:
            channel.draining = True
        left = max(0.0, deadline - time.monotonic())
        _say(
            f"gateway: stopping: {notice}no new connections; waiting up to {left:.0f}s "
            f"for {len(open_now)} open connection(s) to finish"
        )

    def _connections(self) -> list[HTTPChannel]:
        return [d for d in self._map.values() if isinstance(d, HTTPChannel)]

    def _close_done(self) -> None:
        """Close the idle connections, cut the stalled downloads."""
        now = time.time()
        for channel in self._connections():
            quiet = now - channel.last_activity  # since a byte was last sent or received
            pending = channel.total_outbufs_len
            if pending:
                # what waitress's loop would send now (a worker's small writes wait for more)
                sending = not channel.requests or pending >= channel.adj.send_bytes
                if sending and quiet >= STALLED:
                    self._cut += 1
                    channel.handle_close()
            elif not channel.requests and channel.request is None and quiet >= IDLE_GRACE:
                channel.handle_close()

    def _close(self) -> None:
        for channel in self._connections():
            channel.handle_close()  # wakes a worker waiting to write to it
        wasyncore.close_all(self._map)  # the triggers, and the listeners if still open
        self._server.task_dispatcher.shutdown(timeout=THREADS_TIMEOUT)


def _say(line: str) -> None:
    click.echo(line)
    sys.stdout.flush()
