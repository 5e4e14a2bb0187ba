"""waitress settings for a crowd of slow and idle clients, and the descriptors they need.

Slow and idle clients (issue #14). waitress reads a request's head and body in its I/O loop
and hands a worker thread only a complete request, so a client that sends slowly holds a
connection, not a thread; a slow reader of a local file holds neither (sendfile from the
loop). What a crowd of them exhausts is connections and descriptors: waitress's defaults
(100 connections, a select() loop that cannot watch a descriptor above 1023) gave out at
about 98. Measured with bench/slow_clients.py (figures in docs/deployment.md): an open
connection costs about 6 KiB of this process's memory and one descriptor (two while it
downloads a local file); with 3,000 slow connections open an ordinary request took 15 ms
(median), with 9,000 31 ms (99th percentile 0.9 s), the loop then busy all the time: it
looks at every connection each time it wakes. That cost, not memory, sets CONNECTION_LIMIT.
"""

from __future__ import annotations

import logging
import resource
from typing import Any

import click
from waitress.server import BaseWSGIServer

CONNECTION_LIMIT = 10_000
"""Open connections at most; fewer when the descriptor limit cannot hold that many."""
FEW_CONNECTIONS = 2_000
"""Fewer than this (the descriptor limit's fault) is warned about at start: a crowd of slow
clients could then lock others out."""
DESCRIPTORS_PER_CONNECTION = 2
"""The socket, and the file a local download sends."""
RESERVED_DESCRIPTORS = 256
"""Kept for everything else: the listening socket, logs, store sessions, federation."""
CHANNEL_TIMEOUT = 60
"""Seconds without a byte either way before an idle connection is closed (nginx's default
for its header, body and send timeouts). A request being served is never cut; Caddy keeps its
idle upstream connections for less (deploy/Caddyfile), so it never reuses one closed here."""
CLEANUP_INTERVAL = 10
"""Seconds between looks for idle connections: one is closed 60-70 s after its last byte."""
OUTBUF_HIGH_WATERMARK = 16 * 1024 * 1024
"""waitress's default, kept: a download from SMB or S3 is copied by a worker thread into the
connection's buffer (memory up to 1 MiB, then a temporary file), and the thread waits once
more than this is unsent. A recording up to 16 MiB (16 minutes of 8 kHz WAV) so frees its
thread at once, however slowly it is read: 40 slow readers of an 8 MiB SMB file left searches
at 5-8 ms with 32 threads, while 40 of a 40 MiB file held every thread. A higher mark frees
threads for longer calls at the price of more of /tmp for each slow reader."""
ACCEPTS_PER_WAKEUP = 64
"""Waiting connections accepted each time the loop wakes (see accept_in_bursts)."""
BACKLOG = 4096
"""Connections the kernel queues before they are accepted (Linux caps it at
net.core.somaxconn, 4096 by default): a burst waits in the queue instead of having its SYNs
dropped and retried a second or more later."""


def raise_descriptor_limit(wanted: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards ``wanted`` (at most the hard limit); return the
    soft limit before and after. Outside systemd's ``LimitNOFILE=`` the soft limit is often
    1024 while the hard limit is far higher: raising it is what the hard limit is for."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft, soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return soft, max(soft, target)


def connection_limit(descriptors: int) -> int:
    """The most connections ``descriptors`` open files can hold, up to CONNECTION_LIMIT.

    At the descriptor limit, accept() fails (EMFILE) on every turn of waitress's loop while
    the connection stays queued; at the connection limit, waitress stops accepting and the
    kernel queues newcomers until a connection closes."""
    usable = (descriptors - RESERVED_DESCRIPTORS) // DESCRIPTORS_PER_CONNECTION
    return max(1, min(CONNECTION_LIMIT, usable))


def capacity_settings() -> dict[str, Any]:
    """waitress settings for a crowd of slow and idle clients; raises the descriptor limit
    as far as needed (and allowed), and says so on standard error."""
    wanted = CONNECTION_LIMIT * DESCRIPTORS_PER_CONNECTION + RESERVED_DESCRIPTORS
    before, now = raise_descriptor_limit(wanted)
    limit = connection_limit(now)
    if now != before:
        click.echo(
            f"gateway: open files limit (RLIMIT_NOFILE) raised from {before} to {now}: "
            f"up to {limit} connections",
            err=True,
        )
    if limit < FEW_CONNECTIONS:
        logging.getLogger("gateway").warning(
            "the open files limit (RLIMIT_NOFILE, %d) holds %d connections only: "
            "raise it to %d (LimitNOFILE= in the systemd unit)",
            now,
            limit,
            wanted,
        )
    return {
        "connection_limit": limit,
        "channel_timeout": CHANNEL_TIMEOUT,
        "cleanup_interval": CLEANUP_INTERVAL,
        "backlog": BACKLOG,
        "outbuf_high_watermark": OUTBUF_HIGH_WATERMARK,
        "asyncore_use_poll": True,  # select() cannot watch descriptors above 1023
    }


def accept_in_bursts(listener: BaseWSGIServer) -> None:
    """Make ``listener`` accept up to ACCEPTS_PER_WAKEUP waiting connections each time the
    loop wakes, instead of one, stopping at the connection limit.

    Each wake-up of waitress's loop asks every open connection whether it wants to read or
    write, so with one accept per wake-up a crowd that arrives at once is let in in quadratic
    time: 2,000 connections arriving while 1,000 were open took about 9 s (measured with
    bench/slow_clients.py), during which an ordinary client's connection waited in the
    kernel's queue behind them."""
    accept_one = listener.handle_accept
    connections = listener._map  # waitress's socket map: listeners, trigger, connections

    def handle_accept() -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            before = len(connections)
            if before >= listener.adj.connection_limit:
                return
            accept_one()
            if len(connections) == before:  # none was waiting (or accept failed, logged)
                return

    listener.handle_accept = handle_accept


def listeners(server: Any) -> list[BaseWSGIServer]:
    """The listening sockets' servers of what waitress.create_server returned."""
    if isinstance(server, BaseWSGIServer):
        return [server]
    return [d for d in server.map.values() if isinstance(d, BaseWSGIServer)]
