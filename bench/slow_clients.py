"""Slow clients: an ordinary client's latency with and without a crowd of slow connections.

Run by hand: ``.venv/bin/python bench/slow_clients.py [--crowd 1000] [--rounds 30]
[--no-caddy | --no-direct]``. Starts a real gateway on loopback over a demo archive with a
16 MiB file, measures ``GET /healthz``, a search and a 1000-byte range (latency percentiles),
then opens ``--crowd`` connections of each kind (unfinished request heads, unfinished search
bodies, hardly read downloads; the machinery is in ``tests/proof/test_slow_clients.py``) and
measures again, with the gateway's resident memory, descriptors and CPU. Then the same behind
the shipped deploy/Caddyfile (plain HTTP on loopback), with Caddy's memory. Figures of a run
are in docs/deployment.md ("Capacity and slow clients")."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, for tests.*

import argparse
import os
import resource
import statistics
import tempfile
import time

import tests.proof.test_slow_clients as slow
from tests.web.conftest import Caddy, Gateway, caddy_missing, serve_args, upstream_of

TICK = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentiles(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return f"p50 {q[49]:6.1f}  p90 {q[89]:6.1f}  p99 {q[98]:6.1f}  max {ms[-1]:6.1f} ms"


def measure(label: str, ordinary: slow.Ordinary, rounds: int, pids: dict[str, int]) -> None:
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    start = time.monotonic()
    timings = ordinary.rounds(rounds)
    wall = time.monotonic() - start
    print(f"  {label}:")
    for what, seconds in timings.items():
        print(f"    {what:8} {percentiles(seconds)}")
    for name, pid in pids.items():
        busy = (cpu_seconds(pid) - before[name]) / wall * 100
        print(
            f"    {name}: RSS {rss_mib(pid):6.1f} MiB, {descriptors(pid):5} descriptors, "
            f"CPU {busy:4.0f}% while measured"
        )


def run(
    target: str,
    ordinary: slow.Ordinary,
    link_path: str,
    args: argparse.Namespace,
    pids: dict[str, int],
) -> None:
    host, port = target.split("://", 1)[1].rsplit(":", 1)
    print(f"{target} ({', '.join(pids)}):")
    measure("no crowd", ordinary, args.rounds, pids)
    crowd = slow.Crowd("127.0.0.1", int(port))
    cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    start = time.monotonic()
    try:
        opened = slow.open_crowd(crowd, link_path, f"{host}:{port}", args.crowd)
        placed = time.monotonic() - start
        used = ", ".join(
            f"{name} {cpu_seconds(pid) - cpu_before[name]:.1f}" for name, pid in pids.items()
        )
        print(f"  crowd {opened} placed in {placed:.1f} s (CPU s: {used})")
        measure(f"{sum(opened.values())} slow connections open", ordinary, args.rounds, pids)
    finally:
        crowd.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--crowd", type=int, default=1000, help="Connections of each kind.")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-caddy", action="store_true", help="Only the gateway on its own.")
    parser.add_argument("--no-direct", action="store_true", help="Only behind Caddy.")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 4 * args.crowd + 1024
    if hard != resource.RLIM_INFINITY and hard < needed:
        print(f"the hard RLIMIT_NOFILE ({hard}) is below the {needed} this needs")
        return 1
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        archive, call = slow.big_archive(tmp / "archive")
        gw = Gateway(serve_args(archive), tmp / "gateway.log")
        try:
            link_path = "/" + gw.links(call)[0]["url"].split("/", 3)[3]
            pids = {"gateway": gw.proc.pid}
            if not args.no_direct:
                run(gw.url, slow.Ordinary(gw.url, call, link_path), link_path, args, pids)
            if not args.no_caddy and caddy_missing() is None:
                (tmp / "caddy").mkdir()
                proxy = Caddy(tmp / "caddy", upstream_of(gw), tls=False)
                try:
                    pids["caddy"] = proxy.proc.pid
                    ordinary = slow.Ordinary(proxy.url, call, link_path)
                    run(proxy.url, ordinary, link_path, args, pids)
                finally:
                    proxy.stop()
        finally:
            gw.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
