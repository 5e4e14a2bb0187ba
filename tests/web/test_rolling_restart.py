"""A graceful stop, and rolling restarts of two gateways behind the shipped Caddyfile.

On SIGTERM a gateway stops listening (the proxy retries a refused connection elsewhere),
finishes the requests and downloads it has, and exits 0 within ``--stop-timeout``. Two
instances sharing a link key file behind deploy/Caddyfile can then be restarted one after the
other, and their key rotated with SIGHUP, while a client keeps searching and downloading
ranges: not one request fails.
"""

from __future__ import annotations

import random
import secrets
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pytest
import requests

from gateway.web.drain import STALLED
from tests.conftest import free_port, wait_until
from tests.web.conftest import (
    TOKEN,
    Archive,
    Caddy,
    Gateway,
    caddy_missing,
    serve_args,
    upstream_of,
    with_big_file,
)

WORDS = 6 * 1024 * 1024  # 24 MiB: far more than loopback sockets hold


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Archive, bytes]:
    return with_big_file(tmp_path_factory.mktemp("big"), WORDS)


def _line(gw: Gateway, timeout: float = 10) -> str:
    """The gateway's next line on standard output, waited for at most ``timeout`` seconds."""
    stdout = gw.proc.stdout
    assert stdout is not None
    ready, _, _ = select.select([stdout], [], [], timeout)
    assert ready, f"no line from the gateway within {timeout}s: {gw.log()}"
    return stdout.readline().decode()


def _head(answer: BinaryIO) -> tuple[int, dict[str, str]]:
    """A response's status and headers (lower-case names), read from a raw connection."""
    status = int(answer.readline().split()[1])
    headers = {}
    while (line := answer.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def _health(gw: Gateway) -> tuple[int, dict[str, str]]:
    """``/healthz``'s status, and its body when it is not 200."""
    answer = requests.get(f"{gw.url}/healthz", timeout=10)
    return answer.status_code, {} if answer.ok else answer.json()


def _refused(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname or "", parts.port or 80), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def test_a_stop_finishes_the_download_in_flight_and_refuses_new_connections(
    start_gateway: Any, big: tuple[Archive, bytes]
) -> None:
    archive, content = big
    gw = start_gateway("--stop-timeout", "20", root=archive)
    [link] = gw.links(archive.call_with(1))
    parts = urlsplit(link["url"])
    idle = requests.Session()  # an idle keep-alive connection: closed, not waited for
    assert idle.get(f"{gw.url}/", timeout=10).ok  # (not /healthz: nobody checks this one)
    silent = socket.create_connection((parts.hostname, parts.port))  # never sends a byte
    # a download, and a request queued behind it on the same connection (pipelined)
    conn = socket.create_connection((parts.hostname, parts.port), timeout=30)
    host = f"Host: {parts.netloc}\r\n"
    conn.sendall(f"GET {parts.path} HTTP/1.1\r\n{host}\r\nGET / HTTP/1.1\r\n{host}\r\n".encode())
    answer = conn.makefile("rb")
    status, headers = _head(answer)
    assert status == 200
    assert int(headers["content-length"]) == len(content)
    first = answer.read(64 * 1024)

    gw.proc.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    assert _line(gw).startswith("gateway: stopping: no new connections")
    assert _refused(gw.url)
    rest = answer.read(len(content) - len(first))
    assert first + rest == content  # every byte, after the signal
    status, headers = _head(answer)  # the request that waited: answered, then closed
    assert status == 200
    assert headers["connection"] == "close"
    answer.read(int(headers["content-length"]))
    assert answer.read() == b""  # closed by the gateway
    gw.proc.wait(10)  # the idle and silent connections did not hold it for 20 s
    assert gw.proc.returncode == 0
    assert time.monotonic() - stopping < 15
    assert _line(gw) == "gateway: stopped\n"
    conn.close()
    silent.close()
    idle.close()


def test_a_checked_gateway_says_503_on_healthz_before_it_stops_listening(
    start_gateway: Any, archive: Archive
) -> None:
    gw = start_gateway()
    call = archive.call_with(1)
    for _ in range(2):  # a load balancer checks it (asked once, e.g. by a peer: nobody does)
        assert requests.get(f"{gw.url}/healthz", timeout=10).ok
    gw.proc.send_signal(signal.SIGTERM)
    # until /healthz has said 503, everything is served as usual, on new connections too
    assert gw.search(callid=call.callid, timestamp=call.start).status_code == 200
    health = wait_until(lambda: (h := _health(gw)) != (200, {}) and h)
    assert health == (503, {"status": "ERROR", "error": "stopping"})
    assert _line(gw).startswith("gateway: stopping: /healthz answered 503 for ")
    assert _refused(gw.url)
    assert gw.proc.wait(10) == 0


@pytest.mark.parametrize(
    ("stop_timeout", "second_signal", "within"),
    [
        ("1", False, 4),  # the bound
        ("20", True, 3),  # a second signal
        ("20", False, STALLED + 4),  # a reader that stopped reading is not waited for
    ],
)
def test_the_stop_is_bounded_and_a_second_signal_stops_at_once(
    start_gateway: Any,
    big: tuple[Archive, bytes],
    stop_timeout: str,
    second_signal: bool,
    within: float,
) -> None:
    archive, _ = big
    gw = start_gateway("--stop-timeout", stop_timeout, root=archive)
    [link] = gw.links(archive.call_with(1))
    stalled = requests.get(link["url"], stream=True, timeout=30)  # reads no further
    gw.proc.send_signal(signal.SIGTERM)
    stopping = time.monotonic()
    assert _line(gw).startswith("gateway: stopping:")
    if second_signal:
        gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(within + 5) == 0
    assert time.monotonic() - stopping < within
    assert _line(gw) == "gateway: stopped, 1 connection(s) cut before they finished\n"
    stalled.close()


class Instance:
    """One of the two gateways: always on the same port, with the shared key file."""

    def __init__(self, name: str, folder: Path, archive: Archive, key_file: Path) -> None:
        self.name, self.folder, self.port = name, folder, free_port()
        args = serve_args(archive, "--link-key-file", str(key_file), "--link-ttl", "60")
        self.args = [f"127.0.0.1:{self.port}" if a == "127.0.0.1:0" else a for a in args]
        self.runs = 0
        self.gw = self.start()

    def start(self) -> Gateway:
        self.runs += 1
        self.gw = Gateway(self.args, self.folder / f"{self.name}-{self.runs}.log")
        return self.gw

    def restart(self) -> None:
        """SIGTERM, wait for the exit (status 0), start again on the same port."""
        self.gw.proc.send_signal(signal.SIGTERM)
        self.gw.proc.wait(30)  # Gateway.stop would send a second SIGTERM: stop at once
        assert self.gw.stop() == 0, self.gw.log()
        assert "stopped" in self.gw.tail
        self.start()

    def served_searches(self) -> int:
        return self.gw.log().count(" POST /search/ 200 ")

    def health_checks(self) -> int:
        return self.gw.log().count(" GET /healthz 200 ")

    def reloads(self) -> int:
        return self.gw.log().count("reload: ")


class Client:
    """Threads that search through the proxy and download a range of every link found, and
    count what succeeded and what failed."""

    def __init__(self, url: str, archive: Archive, threads: int = 3) -> None:
        self.url, self.archive = url, archive
        self.done = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(n,)) for n in range(threads)]
        for thread in self._threads:
            thread.start()

    def _loop(self, seed: int) -> None:
        rnd = random.Random(seed)
        session = requests.Session()
        while not self._stop.is_set():
            call = rnd.choice(self.archive.calls)
            try:
                self._one(session, call.callid, call.start, rnd)
            except Exception as exc:
                with self._lock:
                    self.failures.append(f"{call.callid}: {exc!r}")
        session.close()

    def _one(self, session: requests.Session, callid: str, start: str, rnd: random.Random) -> None:
        data = {"token": TOKEN, "callid": callid, "timestamp": start}
        found = session.post(f"{self.url}/search/", data=data, timeout=30)
        assert found.status_code == 200, f"search {found.status_code} {found.text[:200]}"
        self._count()
        for entry in found.json()["files"]:
            content = (self.archive.root / _key(self.archive, callid, entry)).read_bytes()
            if not content:  # an empty recording (the demo has some): no range to ask
                whole = session.get(entry["url"], timeout=30)
                assert (whole.status_code, whole.content) == (200, b""), f"{whole.status_code}"
            else:
                first = rnd.randrange(len(content))
                last = min(len(content) - 1, first + rnd.randrange(1000))
                headers = {"Range": f"bytes={first}-{last}"}
                part = session.get(entry["url"], headers=headers, timeout=30)
                assert part.status_code == 206, f"range {part.status_code} {part.text[:200]}"
                assert part.content == content[first : last + 1], "wrong bytes"
            self._count()

    def _count(self) -> None:
        with self._lock:
            self.done += 1

    def wait_for(self, more: int) -> None:
        """Wait until the client made ``more`` further requests that succeeded."""
        target = self.done + more
        wait_until(lambda: self.done >= target or self.failures, 60, 0.05)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)


def _key(archive: Archive, callid: str, entry: dict[str, Any]) -> str:
    """The archive's file that a search answer's entry names."""
    call = next(c for c in archive.calls if c.callid == callid)
    (name,) = [f for f in call.files if Path(f).name == entry["name"]]
    return name


@pytest.fixture
def pair(tmp_path: Path, archive: Archive) -> Iterator[tuple[Instance, Instance, Path]]:
    key_file = tmp_path / "link-keys"
    key_file.write_text(secrets.token_urlsafe(32) + "\n")
    key_file.chmod(0o600)
    a = Instance("a", tmp_path, archive, key_file)
    b = Instance("b", tmp_path, archive, key_file)
    yield a, b, key_file
    for instance in (a, b):
        instance.gw.proc.send_signal(signal.SIGTERM)  # and stop() sends a second: at once
    for instance in (a, b):
        instance.gw.stop()


@pytest.mark.skipif(caddy_missing() is not None, reason=str(caddy_missing()))
def test_rolling_restarts_and_a_key_rotation_behind_caddy_fail_no_request(
    tmp_path: Path, archive: Archive, pair: tuple[Instance, Instance, Path]
) -> None:
    a, b, key_file = pair
    proxy = Caddy(tmp_path, f"{upstream_of(a.gw)} {upstream_of(b.gw)}", tls=False)
    client = Client(proxy.url, archive)
    try:
        client.wait_for(30)
        # Caddy checks /healthz every 2 s; a gateway checked twice knows that it is checked
        wait_until(lambda: min(a.health_checks(), b.health_checks()) >= 2, 10)
        for instance in (a, b):  # (1) restart A, (2) restart B
            instance.restart()
            client.wait_for(30)
            # the restarted instance is back in use before the other one goes
            wait_until(lambda i=instance: i.served_searches() > 0 or client.failures, 30)
            assert client.failures == []
        # (3) key rotation without a restart; with two instances, in three reloads, so that
        # no link is ever checked by an instance that does not know its key yet:
        old = key_file.read_text().strip()
        new = secrets.token_urlsafe(32)
        for keys in ([old, new], [new, old], [new]):  # verify it, sign with it, drop the old
            key_file.write_text("\n".join(keys) + "\n")
            for instance in (a, b):
                reloads = instance.reloads()
                instance.gw.proc.send_signal(signal.SIGHUP)
                wait_until(lambda i=instance, n=reloads: i.reloads() > n, 10)
            client.wait_for(30)
        assert client.failures == []
    finally:
        client.stop()
        proxy.stop()
    assert client.failures == [], client.failures[:5]
    for instance in (a, b):
        assert "1 key(s), 1 removed" in instance.gw.log()
        assert instance.gw.proc.poll() is None  # SIGHUP never stopped them
