"""HTTP service speed: /search/ under concurrency and 50 MB downloads, each next to a
baseline measured in the same run; memory while 50 clients download at once.

Run by hand (needs Debian's ``wrk`` and ``nginx``: ``apt-get install wrk nginx``)::

    .venv/bin/python bench/web.py [--seconds S] [--rounds R] [--threads T]
        [--archive DIR --layout freepbx] [--only search|download|memory] [--before DIR]

Starts, on free loopback ports, real ``gateway serve`` processes, a falcon endpoint that returns
a constant under the same waitress and ``--threads``, and nginx (sendfile) serving the same big
file from a temporary config. The load comes from ``wrk`` (C, its own process, a Lua script for
the POST body), so the clients are not the limit: each line also prints how busy the server
process and wrk were (% of one core; waitress runs Python on one core at a time, so a server
near 100% is the bottleneck, and wrk far below 100% per thread is not). Every measurement is
repeated ``--rounds`` times, gateway and baseline interleaved (A B A B ...), and printed as the
median with [min-max] over the rounds; the ratio is taken pair by pair.

- search: ``POST /search/`` requests/s and p50/p99 latency with 16 and 64 concurrent clients,
  next to the constant endpoint with the same clients. By default on a small demo archive; with
  ``--archive DIR --layout freepbx`` on an existing big tree (``bench/search.py`` makes one of
  1,000,000 files at /tmp/gateway-bench-archive): the call is one file's id there, its
  timestamp the id's epoch part.
- download: a 50 MB (``--size-mb``) file through a signed link, one client alone and 16
  clients at once (aggregate MB/s), next to nginx serving the same file; also each server's
  CPU seconds per GB sent, which, unlike the speed, hardly moves with the machine's other load.
- memory: the gateway's resident memory before, and its peak (VmHWM) while ``--clients``
  clients download the big file at once: streaming means the peak does not grow with file
  size. A fresh gateway, so the peak is this part's alone.

``--before DIR`` (repeatable) also runs, interleaved with this checkout's, the gateway of
another checkout (``mkdir DIR && git archive HEAD | tar -x -C DIR``; its ``gateway`` package
and its ``plugins/*``): before and after a change, in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from gateway.demo import tone, write_demo

TOKEN = "bench-token"
CONSTANT_APP = textwrap.dedent(
    """
    import sys, falcon, waitress
    class Constant:
        def on_post(self, req, resp):
            req.bounded_stream.read()
            resp.media = {"status": "OK", "callid": "x", "files": []}
        on_get = on_post
    app = falcon.App()
    app.add_route("/search/", Constant())
    waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=int(sys.argv[2]),
                   ident="recording-gateway", _quiet=True)
    """
)
# wrk's script: the method and body come from the environment; at the end one JSON line with
# the counts and latency percentiles (microseconds), which the benchmark reads.
WRK_SCRIPT = textwrap.dedent(
    """
    wrk.method = os.getenv("WRK_METHOD") or "GET"
    local body = os.getenv("WRK_BODY")
    if body and body ~= "" then
      wrk.body = body
      wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
    end
    done = function(summary, latency, requests)
      local e = summary.errors
      io.write(string.format(
        '{"requests": %d, "bytes": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
        '"errors": %d, "status_errors": %d}\\n',
        summary.requests, summary.bytes, summary.duration,
        latency:percentile(50), latency:percentile(99),
        e.connect + e.read + e.write + e.timeout, e.status))
    end
    """
)


@dataclass(frozen=True)
class Load:
    """One wrk run: what it counted, and how busy the server and wrk were meanwhile."""

    rps: float
    mb_s: float
    p50_ms: float
    p99_ms: float
    server_cpu: float  # % of one core
    client_cpu: float  # % of one core, all wrk threads together


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def make_big_wav(path: Path, size_mb: int) -> None:
    header = tone(0, 440)[:44]
    data_size = size_mb * 1024 * 1024 - 44
    header = (
        header[:4]
        + (data_size + 36).to_bytes(4, "little")
        + header[8:40]
        + data_size.to_bytes(4, "little")
    )
    block = tone(1, 440)[44:] * 8
    with path.open("wb") as out:
        out.write(header)
        left = data_size
        while left > 0:
            out.write(block[: min(left, len(block))])
            left -= min(left, len(block))


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


class Wrk:
    def __init__(self, tmp: Path, seconds: int) -> None:
        self._script = tmp / "bench.lua"
        self._script.write_text(WRK_SCRIPT)
        self._seconds = seconds
        self._hz = os.sysconf("SC_CLK_TCK")

    def run(self, url: str, server_pid: int, clients: int, body: str | None = None) -> Load:
        env = dict(os.environ, WRK_METHOD="POST" if body else "GET", WRK_BODY=body or "")
        threads = min(2, clients)
        before = cpu_ticks(server_pid)
        usage = os.times()
        started = time.monotonic()
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(clients), "-d", f"{self._seconds}s",
             "--timeout", "60s", "-s", str(self._script), url],
            env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        wall = time.monotonic() - started
        server = (cpu_ticks(server_pid) - before) / self._hz / wall * 100
        after = os.times()
        client = (
            (
                (after.children_user - usage.children_user)
                + (after.children_system - usage.children_system)
            )
            / wall
            * 100
        )
        stats = json.loads(out.strip().splitlines()[-1])
        # a 50 MB download may not finish in a short run: bytes, not requests, count there
        if stats["errors"] or stats["status_errors"] or not stats["bytes"]:
            raise RuntimeError(f"wrk against {url}: {out}")
        seconds = stats["duration_us"] / 1e6
        return Load(
            rps=stats["requests"] / seconds,  # 0 when no download finished in time
            mb_s=stats["bytes"] / seconds / 1e6,
            p50_ms=stats["p50_us"] / 1000,
            p99_ms=stats["p99_us"] / 1000,
            server_cpu=server,
            client_cpu=client,
        )


def spread(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    if len(values) == 1:
        return format(med, fmt)
    return f"{med:{fmt}} [{min(values):{fmt}}-{max(values):{fmt}}]"


@dataclass(frozen=True)
class Target:
    label: str
    url: str
    pid: int  # the process that serves, whose CPU time is read


def interleaved(
    wrk: Wrk, rounds: int, targets: list[Target], clients: int, body: str | None = None
) -> dict[str, list[Load]]:
    """Load each target in turn (A B C A B C ...), so a drift of the machine hits them all."""
    loads: dict[str, list[Load]] = {t.label: [] for t in targets}
    for _ in range(rounds):
        for t in targets:
            loads[t.label].append(wrk.run(t.url, t.pid, clients, body))
    return loads


def report(loads: dict[str, list[Load]], rate: Callable[[Load], float], unit: str) -> None:
    """One line per target, then each one's ratio to the last (the baseline), pair by pair."""
    *measured, baseline = loads
    width = max(len(label) for label in loads)
    for label, runs in loads.items():
        latency = (
            f", p50 {spread([x.p50_ms for x in runs], '.1f')} ms, "
            f"p99 {spread([x.p99_ms for x in runs], '.1f')} ms"
            if unit == "req/s"
            else ""
        )
        # a download's CPU cost per byte (server CPU seconds per GB) does not depend on how
        # much of the machine others take, unlike its speed
        cost = (
            f", server CPU {spread([x.server_cpu * 10 / x.mb_s for x in runs], '.2f')} s/GB"
            if unit == "MB/s"
            else ""
        )
        print(
            f"      {label:{width}}  {spread([rate(x) for x in runs], '.0f')} {unit}{latency}; "
            f"busy: server {spread([x.server_cpu for x in runs], '.0f')}%, "
            f"wrk {spread([x.client_cpu for x in runs], '.0f')}%{cost}"
        )
    for label in measured:
        pairs = zip(loads[label], loads[baseline], strict=True)
        ratios = [rate(a) / rate(b) for a, b in pairs]
        print(f"      ratio {label} / {baseline} ({unit}): {spread(ratios, '.2f')}")


class Servers:
    """The processes of one run; all stopped at the end."""

    def __init__(self, tmp: Path, threads: int) -> None:
        self._tmp = tmp
        self._threads = threads
        self._procs: list[subprocess.Popen[bytes]] = []

    def gateway(self, root: Path, layout: str, code: Path | None = None) -> tuple[str, int]:
        """A ``gateway serve``; with ``code``, the ``gateway`` package of that checkout."""
        port = free_port()
        proc = self._start(
            [sys.executable, "-m", "gateway", "serve", "--backend", "local",
             "--path", str(root), "--layout", layout, "--timezone", "UTC",
             "--token", TOKEN, "--bind-to", f"127.0.0.1:{port}",
             "--threads", str(self._threads)],
            # python -m puts the working directory first on the path; the checkout's plugins
            # go on it too (they follow the gateway package they were written with)
            cwd=code,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(map(str, plugins_of(code))))
            if code
            else None,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/healthz")
        return url, proc.pid

    def constant(self) -> tuple[str, int]:
        port = free_port()
        proc = self._start([sys.executable, "-c", CONSTANT_APP, str(port), str(self._threads)])
        url = f"http://127.0.0.1:{port}/search/"
        wait_http(url)
        return url, proc.pid

    def nginx(self, root: Path) -> tuple[str, int]:
        port = free_port()
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = nginx_conf(root, port, self._tmp)
        proc = self._start([nginx, "-c", str(conf), "-p", str(self._tmp)])
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/")
        # the worker serves, not the master: measure its CPU
        pid_file = self._tmp / "nginx.pid"
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        return url, int(children[0]) if children else int(pid_file.read_text())

    def _start(
        self, argv: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd, env=env
        )
        self._procs.append(proc)
        return proc

    def stop(self) -> None:
        for p in self._procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self._procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def plugins_of(code: Path) -> list[Path]:
    """The folders of a checkout's own plugins (``plugins/*``), to import them from there."""
    return sorted(p for p in (code / "plugins").glob("*") if p.is_dir())


def nginx_conf(root: Path, port: int, tmp: Path) -> Path:
    conf = tmp / "nginx.conf"
    conf.write_text(
        textwrap.dedent(
            f"""
            daemon off;
            worker_processes 1;
            pid {tmp}/nginx.pid;
            error_log {tmp}/nginx-error.log;
            events {{ worker_connections 1024; }}
            http {{
                access_log off;
                sendfile on;
                client_body_temp_path {tmp}/body;
                proxy_temp_path {tmp}/proxy;
                fastcgi_temp_path {tmp}/fastcgi;
                uwsgi_temp_path {tmp}/uwsgi;
                scgi_temp_path {tmp}/scgi;
                server {{
                    listen 127.0.0.1:{port};
                    root {root};
                }}
            }}
            """
        )
    )
    return conf


def archive_call(root: Path) -> tuple[str, str]:
    """A call of a dated (YYYY/MM/DD) archive: the middle file of its middle day. Its id's
    epoch part is its start (as ``bench/search.py`` writes them)."""
    days = sorted(p for p in root.glob("[0-9]*/[0-9]*/[0-9]*") if p.is_dir())
    if not days:
        raise SystemExit(f"{root}: no YYYY/MM/DD folders (bench/search.py makes one)")
    names = sorted(e.name for e in os.scandir(days[len(days) // 2]) if e.name.endswith(".wav"))
    callid = names[len(names) // 2].removesuffix(".wav").rsplit("-", 1)[1]
    start = datetime.fromtimestamp(int(callid.split(".")[0]), UTC)
    return callid, start.isoformat()


@contextmanager
def demo_archive(tmp: Path, size_mb: int) -> Iterator[tuple[Path, str, str, str]]:
    """The demo archive plus one big WAV: (root, a demo call id, its start, the big call id)."""
    root = tmp / "archive"
    calls = write_demo(root, end=date(2026, 3, 9), days=3, tz=ZoneInfo("UTC"))
    big_call = "1773000000.999"
    make_big_wav(root / f"2026/03/09/in-200-300-20260309-120000-{big_call}.wav", size_mb)
    yield root, calls[6].callid, calls[6].start.isoformat(), big_call


def search_part(args: argparse.Namespace, servers: Servers, wrk: Wrk, demo: Path) -> None:
    if args.archive is not None:
        root, layout = args.archive, args.layout
        callid, start = archive_call(root)
        where = f"{root} (--layout {layout})"
    else:
        root, layout = demo, "freepbx"
        callid, start = args.demo_call
        where = "the demo archive"
    fields = {"token": TOKEN, "callid": callid, "timestamp": start}
    targets = []
    for label, code in gateways(args):
        url, pid = servers.gateway(root, layout, code)
        answer = requests.post(f"{url}/search/", data=fields, timeout=30).json()
        if not answer.get("files"):
            raise SystemExit(f"{label} finds no file for {callid} in {where}: {answer}")
        targets.append(Target(label, f"{url}/search/", pid))
    const_url, const_pid = servers.constant()
    targets.append(Target("constant", const_url, const_pid))
    print(
        f"search: POST /search/ for call {callid} at {start} in {where}, next to a constant "
        f"falcon endpoint; --threads {args.threads} for all"
    )
    body = urllib.parse.urlencode(fields)
    for clients in (16, 64):
        print(f"  {clients} clients")
        report(interleaved(wrk, args.rounds, targets, clients, body), lambda x: x.rps, "req/s")


def gateways(args: argparse.Namespace) -> list[tuple[str, Path | None]]:
    """This checkout's gateway, and the one of each ``--before`` checkout (named by it)."""
    return [("gateway", None)] + [(str(code), code) for code in args.before]


def big_link(gw_url: str, big_call: str) -> str:
    answer = requests.post(
        f"{gw_url}/search/", data={"token": TOKEN, "callid": big_call}, timeout=10
    ).json()
    return str(answer["files"][0]["url"])


def download_part(args: argparse.Namespace, servers: Servers, wrk: Wrk, demo: Path) -> None:
    targets = []
    for label, code in gateways(args):
        url, pid = servers.gateway(demo, "freepbx", code)
        targets.append(Target(label, big_link(url, args.big_call), pid))
    nginx_url, nginx_pid = servers.nginx(demo)
    plain = f"{nginx_url}/2026/03/09/in-200-300-20260309-120000-{args.big_call}.wav"
    targets.append(Target("nginx", plain, nginx_pid))
    print(f"download: a {args.size_mb} MB file through a signed link, next to nginx (sendfile)")
    for clients in (1, 16):
        print(f"  {clients} client{'s at once, aggregate' if clients > 1 else ' alone'}")
        report(interleaved(wrk, args.rounds, targets, clients), lambda x: x.mb_s, "MB/s")


def memory_part(args: argparse.Namespace, servers: Servers, wrk: Wrk, demo: Path) -> None:
    print(
        f"memory: {args.clients} clients downloading the {args.size_mb} MB file at once for "
        f"{args.seconds} s, each gateway fresh"
    )
    for label, code in gateways(args):
        url, pid = servers.gateway(demo, "freepbx", code)
        link = big_link(url, args.big_call)
        before = rss_kib(pid, "VmRSS")
        load = wrk.run(link, pid, args.clients)
        peak = rss_kib(pid, "VmHWM")
        print(
            f"  {label}: RSS before {before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB "
            f"({load.mb_s:.0f} MB/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="of each side-by-side pair")
    parser.add_argument("--threads", type=int, default=32, help="waitress threads of both")
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--clients", type=int, default=50, help="of the memory part")
    parser.add_argument("--archive", type=Path, help="search this dated tree instead")
    parser.add_argument("--layout", default="freepbx", help="of --archive")
    parser.add_argument("--only", choices=("search", "download", "memory"))
    parser.add_argument(
        "--before",
        type=Path,
        action="append",
        default=[],
        help="also run the gateway of this checkout (e.g. `git archive` of the last commit); "
        "repeatable",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk: apt-get install wrk nginx")

    tmp = Path(tempfile.mkdtemp(prefix="bench-web-"))
    tmp.chmod(0o755)  # nginx's workers run as an unprivileged user
    servers = Servers(tmp, args.threads)
    wrk = Wrk(tmp, args.seconds)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        with demo_archive(tmp, args.size_mb) as (demo, callid, start, big_call):
            args.demo_call, args.big_call = (callid, start), big_call
            parts = {"search": search_part, "download": download_part, "memory": memory_part}
            for name, part in parts.items():
                if args.only in (None, name):
                    part(args, servers, wrk, demo)
    finally:
        servers.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
