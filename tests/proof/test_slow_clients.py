"""A crowd of slow and idle connections does not lock ordinary clients out (issue #14).

1,000 connections of each kind are opened against a real ``gateway serve`` (directly, then
behind the shipped deploy/Caddyfile): request heads that never end, ``POST /search/`` bodies
that never arrive (``Content-Length: 1000``, a few bytes sent) and downloads of a big file
that are hardly read. Each sends (or reads) a byte every second, so that no idle timeout frees
it. While they are open, an ordinary client's ``GET /healthz``, search and small ranged
download must each be answered within a generous bound (speed is measured by
bench/slow_clients.py; figures in docs/deployment.md).

The gateway starts with a soft RLIMIT_NOFILE of 1024 (the usual default outside systemd's
``LimitNOFILE=``): it must raise the limit itself to hold the crowd.

Behind Caddy the crowd goes through the same Caddyfile as in production, over plain HTTP (the
test's site address is ``http://``; TLS would only add handshakes): Caddy must keep the slow
heads and bodies to itself and cut the heads after its header timeout.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests

from tests.web.conftest import (
    TOKEN,
    Archive,
    Caddy,
    Call,
    Gateway,
    caddy_missing,
    make_archive,
    serve_args,
    upstream_of,
)

CROWD = 1000
"""Connections of each kind (heads, bodies, readers)."""
BOUND_SECONDS = 2.0
"""What an ordinary request may take while the crowd is open (generous: no speed is asserted)."""
BIG_FILE_BYTES = 16 * 1024 * 1024
"""The download slow readers hold: far larger than the socket buffers between them and it."""
TRICKLE_SECONDS = 1.0
"""How often every slow connection sends (or reads) a byte."""
NEEDED_NOFILE = 4 * CROWD + 1024
"""Descriptors this process needs for the crowd (Caddy and the gateway inherit the limit)."""

pytestmark = pytest.mark.timeout(180)

T = TypeVar("T")


@dataclass
class Crowd:
    """Slow connections to ``host:port``, kept going by a thread until ``close()``."""

    host: str
    port: int
    sockets: dict[str, list[socket.socket]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def open(
        self, kind: str, n: int, request: bytes, *, answered: bool = False, deadline: float = 20.0
    ) -> int:
        """Open ``n`` connections in batches (so that the listening backlog is not what is
        measured), send ``request`` on each, and return how many were established (accepted
        or queued by the kernel) within ``deadline`` seconds.

        ``kind`` ``"readers"`` read a few bytes a second; any other kind sends one more byte.
        ``answered``: also wait (within the deadline) until the server has begun to answer on
        each, so that the crowd is in place, its requests served, before anyone measures."""
        opened = self.sockets.setdefault(kind, [])
        end = time.monotonic() + deadline
        for start in range(0, n, 200):
            batch = [self._connect() for _ in range(min(200, n - start))]
            _wait_for(batch, selectors.EVENT_WRITE, end)
            for s in batch:
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 and _connected(s):
                    try:
                        s.send(request)  # a few bytes: the empty send buffer takes them
                    except OSError:
                        s.close()
                        continue
                    opened.append(s)
                else:
                    s.close()
        if answered:
            _wait_for(opened, selectors.EVENT_READ, end)
        if self._thread is None:
            self._thread = threading.Thread(target=self._keep_going, daemon=True)
            self._thread.start()
        return len(opened)

    def _connect(self) -> socket.socket:
        s = socket.socket()
        # A small receive window, and an Internet-sized segment: over loopback's 64 KiB
        # segments the server's send buffer would grow to 3 MiB a reader, which no client
        # across a network gets.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1400)
        s.setblocking(False)
        s.connect_ex((self.host, self.port))
        return s

    def _keep_going(self) -> None:
        while not self._stop.wait(TRICKLE_SECONDS):
            for kind, sockets in list(self.sockets.items()):
                for s in list(sockets):
                    try:
                        if kind == "readers":
                            s.recv(16)
                        else:
                            s.send(b"a")
                    except OSError:
                        pass  # full, or closed by the server: alive() tells

    def alive(self, kind: str) -> int:
        """How many of ``kind`` the server neither answered nor closed (for readers, which
        are answered: how many it did not close while their unread data is gone)."""
        count = 0
        for s in self.sockets.get(kind, []):
            try:
                data = s.recv(1, socket.MSG_PEEK)
            except BlockingIOError:
                count += 1
            except OSError:
                pass
            else:
                count += kind == "readers" and data != b""
        return count

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for sockets in self.sockets.values():
            for s in sockets:
                s.close()
        self.sockets.clear()


def _wait_for(sockets: list[socket.socket], events: int, end: float) -> None:
    """Until each of ``sockets`` is ready for ``events``, or ``end`` (a monotonic time)."""
    with selectors.DefaultSelector() as sel:
        for s in sockets:
            sel.register(s, events)
        pending = len(sockets)
        while pending and time.monotonic() < end:
            for key, _ in sel.select(max(0.0, end - time.monotonic())):
                sel.unregister(key.fileobj)
                pending -= 1


def _connected(s: socket.socket) -> bool:
    try:
        s.getpeername()
    except OSError:
        return False
    return True


def slow_head(host: str) -> bytes:
    """A request head that never ends: the crowd pads it with one more byte at a time."""
    return f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Padding: ".encode()


def slow_body(host: str) -> bytes:
    """A search whose 1000-byte body never arrives: the crowd sends one byte at a time."""
    return (
        f"POST /search/ HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
        "token="
    ).encode()


def download(host: str, path: str) -> bytes:
    """A download, which the crowd reads a few bytes a second of."""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()


def open_crowd(crowd: Crowd, link_path: str, host: str, n: int = CROWD) -> dict[str, int]:
    """``n`` of each kind, readers first (they are the slowest to place: each is a download
    served), with ``host`` as their Host header; returns how many of each are open."""
    return {
        "readers": crowd.open("readers", n, download(host, link_path), answered=True),
        "bodies": crowd.open("bodies", n, slow_body(host)),
        "heads": crowd.open("heads", n, slow_head(host)),
    }


@dataclass(frozen=True)
class Ordinary:
    """What an ordinary client does, timed."""

    base: str
    call: Call
    link_path: str
    verify: str | bool = True

    def rounds(self, n: int) -> dict[str, list[float]]:
        """``n`` rounds of healthz, a search and a 1000-byte range; seconds per request."""
        timings: dict[str, list[float]] = {"healthz": [], "search": [], "range": []}
        for _ in range(n):
            timings["healthz"].append(self._timed(lambda: self._get("/healthz", {})))
            timings["search"].append(self._timed(self._search))
            timings["range"].append(
                self._timed(lambda: self._get(self.link_path, {"Range": "bytes=1000-1999"}))
            )
        return timings

    def _timed(self, request: Callable[[], requests.Response]) -> float:
        start = time.monotonic()
        answer = request()
        seconds = time.monotonic() - start
        assert answer.status_code in (200, 206), answer.text
        return seconds

    def _get(self, path: str, headers: dict[str, str]) -> requests.Response:
        return requests.get(
            self.base + path, headers=headers, timeout=BOUND_SECONDS * 3, verify=self.verify
        )

    def _search(self) -> requests.Response:
        return requests.post(
            f"{self.base}/search/",
            data={"token": TOKEN, "callid": self.call.callid, "timestamp": self.call.start},
            timeout=BOUND_SECONDS * 3,
            verify=self.verify,
        )


def measure(ordinary: Ordinary, rounds: int = 3) -> dict[str, list[float]]:
    """``ordinary.rounds``, a timeout or refusal failing the test with what happened."""
    try:
        return ordinary.rounds(rounds)
    except requests.RequestException as exc:
        pytest.fail(f"an ordinary request failed while the crowd was open: {exc!r}")


def assert_answered(timings: dict[str, list[float]]) -> None:
    slow = {what: max(seconds) for what, seconds in timings.items() if max(seconds) > BOUND_SECONDS}
    assert slow == {}, f"ordinary requests slower than {BOUND_SECONDS} s: {slow}"


def big_archive(root: Path) -> tuple[Archive, Call]:
    """The demo archive with one call's recording made ``BIG_FILE_BYTES`` long."""
    archive = make_archive(root)
    call = archive.call_with(1)
    path = root / call.files[0]
    head = path.read_bytes()[:44]
    path.write_bytes(head + bytes(range(256)) * ((BIG_FILE_BYTES - 44) // 256))
    return archive, call


def sockets_of(pid: int) -> int:
    """How many sockets process ``pid`` has open."""
    folder = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in folder.iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            count += os.readlink(fd).startswith("socket:")
    return count


@pytest.fixture
def nofile() -> Iterator[Callable[[Callable[[], T]], T]]:
    """Raise this process's soft descriptor limit for the crowd; the function it yields runs
    a start-up with a soft limit of 1024, which the process started inherits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < NEEDED_NOFILE:
        pytest.skip(f"the hard RLIMIT_NOFILE ({hard}) is too low for the crowd")
    raised = max(soft, NEEDED_NOFILE)

    def with_1024(start: Callable[[], T]) -> T:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
        try:
            return start()
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))

    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    try:
        yield with_1024
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def big(tmp_path: Path, nofile: Any) -> Iterator[tuple[Gateway, Call, str]]:
    """A gateway started with a soft RLIMIT_NOFILE of 1024, serving an archive with a big
    file; the call and the path of a link to its file."""
    archive, call = big_archive(tmp_path / "archive")
    gw = nofile(lambda: Gateway(serve_args(archive), tmp_path / "gateway.log"))
    try:
        link = gw.links(call)[0]["url"]
        yield gw, call, "/" + link.split("/", 3)[3]
    finally:
        gw.stop()


def test_a_gateway_answers_while_3000_slow_connections_are_open(
    big: tuple[Gateway, Call, str],
) -> None:
    gw, call, link_path = big
    host, port = upstream_of(gw).rsplit(":", 1)
    crowd = Crowd(host, int(port))
    try:
        opened = open_crowd(crowd, link_path, upstream_of(gw))
        timings = measure(Ordinary(gw.url, call, link_path))
        alive = {kind: crowd.alive(kind) for kind in opened}
    finally:
        crowd.close()
    assert opened == {"readers": CROWD, "bodies": CROWD, "heads": CROWD}
    assert_answered(timings)
    assert alive == opened, "the crowd was dropped instead of held"
    assert "open files limit (RLIMIT_NOFILE) raised from 1024" in gw.log()


@pytest.mark.skipif(caddy_missing() is not None, reason=str(caddy_missing()))
def test_behind_caddy_slow_heads_and_bodies_stay_at_caddy(
    tmp_path: Path, big: tuple[Gateway, Call, str]
) -> None:
    gw, call, link_path = big
    (tmp_path / "caddy").mkdir()
    proxy = Caddy(tmp_path / "caddy", upstream_of(gw), tls=False)
    crowd = Crowd("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))
    try:
        opened = open_crowd(crowd, link_path, proxy.url.split("://", 1)[1])
        timings = measure(Ordinary(proxy.url, call, link_path))
        at_gateway = sockets_of(gw.proc.pid)
        heads_left = _waited(lambda: crowd.alive("heads"), 30)
    finally:
        crowd.close()
        proxy.stop()
    assert opened == {"readers": CROWD, "bodies": CROWD, "heads": CROWD}
    assert_answered(timings)
    # the readers' downloads reach the gateway; the unfinished heads and bodies do not
    assert CROWD <= at_gateway < CROWD + 100
    assert heads_left == 0, "Caddy's header timeout (10 s) did not end the heads that never end"


def _waited(count: Callable[[], int], seconds: float) -> int:
    """``count()`` once it is 0, or after ``seconds``."""
    end = time.monotonic() + seconds
    while (left := count()) and time.monotonic() < end:
        time.sleep(0.5)
    return left
