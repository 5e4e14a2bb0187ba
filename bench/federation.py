"""Federated search over 3 sites next to a direct search on one site.

Run by hand: ``.venv/bin/python bench/federation.py [--requests N] [--noise N]``. Starts, on
free loopback ports, three real ``gateway serve`` sites (FreePBX archives whose day folder
holds the call plus ``--noise`` other recordings; the third site holds three times as many, so
it is the slowest) and a hub whose ``--path`` lists the three sites (``--search-all``, so it
must hear from every site). One client asks ``N`` times, one request at a time, over a
keep-alive session. Prints the median time of:

- a direct search on each site;
- the federated search through the hub;

With ``--rtt-ms`` each site is reached (by the client and by the hub alike) through a relay
that holds each request that long, as a site far away would. Without it, everything shares
this machine's cores: the sites' searches are CPU-bound, so on a small machine they run one
after the other no matter how the hub asks.

and the ratios federated / slowest site and federated / sum of the three sites (what asking
them one after the other would cost). The fan-out should cost little more than the slowest
site.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, for tests.*

import argparse
import contextlib
import socket
import statistics
import tempfile
import threading
import time

import requests

from tests.federation.conftest import (
    ON_B_AND_C,
    Call,
    audio,
    file_name,
    peer,
    site_args,
)
from tests.web.conftest import Gateway

TOKENS = {"s1": "bench-token-s1", "s2": "bench-token-s2", "s3": "bench-token-s3"}
HUB_TOKEN = "bench-token-hub"
CALL = ON_B_AND_C


def make_site(root: Path, name: str, noise: int) -> None:
    folder = root / CALL.start.strftime("%Y/%m/%d")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file_name(CALL)).write_bytes(audio(name, CALL))
    stamp = CALL.start.strftime("%Y%m%d-%H%M%S")
    for i in range(noise):
        (folder / f"q-300-555-{stamp}-17730{i:05d}.{i % 1000}.wav").write_bytes(b"")


class Relay:
    """A TCP relay on loopback that holds each request chunk ``delay`` seconds: a site far
    away (a WAN round trip), which is what federation spans in practice."""

    def __init__(self, target: str, delay: float) -> None:
        host, _, port = target.removeprefix("http://").partition(":")
        self.target = (host, int(port))
        self.delay = delay
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b, delay in ((client, upstream, self.delay), (upstream, client, 0.0)):
                threading.Thread(target=self._pump, args=(a, b, delay), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, delay: float) -> None:
        try:
            while data := src.recv(65536):
                if delay:
                    time.sleep(delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


def timed(session: requests.Session, url: str, token: str, call: Call, n: int) -> list[float]:
    fields = {"token": token, "callid": call.callid, "timestamp": call.timestamp}
    times = []
    for _ in range(n):
        started = time.perf_counter()
        resp = session.post(url, data=fields, timeout=30)
        times.append(time.perf_counter() - started)
        resp.raise_for_status()
        assert resp.json()["files"], resp.text
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--noise", type=int, default=2000)
    parser.add_argument(
        "--rtt-ms", type=float, default=0, help="Simulated round trip to each site (a relay)."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        sites: dict[str, Gateway] = {}
        hub = None
        try:
            for i, name in enumerate(TOKENS):
                make_site(base / name, name, args.noise * (3 if i == 2 else 1))
                sites[name] = Gateway(
                    site_args(base / name, "--site-name", name, token=TOKENS[name]),
                    base / f"{name}.log",
                )
            urls = {name: gw.url for name, gw in sites.items()}
            if args.rtt_ms:
                urls = {n: Relay(u, args.rtt_ms / 1000).url for n, u in urls.items()}
            path = ",".join(peer(urls[name], name) for name in sites)
            env = {f"GATEWAY_PEER_TOKEN_{n.upper()}": t for n, t in TOKENS.items()}
            hub = Gateway(
                site_args(base, "--search-all", token=HUB_TOKEN, path=path),
                base / "hub.log",
                env,
            )
            session = requests.Session()
            n = args.requests
            for name in sites:  # warm-up: imports, caches, connections
                timed(session, f"{urls[name]}/search/", TOKENS[name], CALL, 20)
            timed(session, f"{hub.url}/search/", HUB_TOKEN, CALL, 20)
            direct = {
                name: statistics.median(
                    timed(session, f"{urls[name]}/search/", TOKENS[name], CALL, n)
                )
                for name in sites
            }
            federated = statistics.median(timed(session, f"{hub.url}/search/", HUB_TOKEN, CALL, n))
        finally:
            for gw in [*sites.values(), *([hub] if hub else [])]:
                gw.stop()
    slowest = max(direct.values())
    print(
        f"{n} sequential searches each, median; day folders of {args.noise}/{args.noise}/"
        f"{3 * args.noise} recordings"
    )
    for name, seconds in direct.items():
        print(f"  direct search on site {name}:      {seconds * 1000:7.2f} ms")
    print(f"  federated search over 3 sites: {federated * 1000:7.2f} ms")
    print(f"  ratio federated / slowest site:      {federated / slowest:5.2f}")
    print(f"  ratio federated / fastest site:      {federated / min(direct.values()):5.2f}")
    print(f"  ratio federated / sum of the 3 sites: {federated / sum(direct.values()):5.2f}")


if __name__ == "__main__":
    main()
