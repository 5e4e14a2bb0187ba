"""HTTP service speed: /search/ throughput and a 50 MB download, next to baselines; memory
while 50 clients download at once.

Run by hand: ``.venv/bin/python bench/http.py [--seconds S] [--size-mb M] [--clients N]``.
Starts, on free loopback ports, a real ``gateway serve`` on a demo archive (plus one big WAV),
a falcon endpoint that returns a constant under the same waitress settings, and Debian's nginx
serving the same big file from a temporary config. Prints:

- requests per second of ``POST /search/`` with 16 concurrent clients, and of the constant
  falcon endpoint with the same clients (ratio: how much the search itself costs);
- seconds to download the big file through a signed link, and from nginx (ratio);
- the gateway's resident memory before, and its peak (VmHWM) while ``--clients`` clients
  download the big file at once: streaming means the peak does not grow with file size.

Clients are separate processes (4 of them, with threads), so the client's GIL is not the limit.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, for tests.*

import argparse
import multiprocessing
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
from datetime import date
from zoneinfo import ZoneInfo

import requests

from gateway.demo import tone, write_demo

TOKEN = "bench-token"
THREADS = 32
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20) -> None:
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


def _client(args: tuple[str, dict[str, str], float, int]) -> int:
    url, data, seconds, threads = args
    count = [0] * threads
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            r = session.post(url, data=data, timeout=10)
            if r.status_code != 200:
                raise RuntimeError(r.text)
            count[i] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(count)


def throughput(url: str, data: dict[str, str], seconds: float, clients: int = 16) -> float:
    procs = 4
    with multiprocessing.Pool(procs) as pool:
        _client((url, data, 0.5, 1))  # warm up
        counts = pool.map(_client, [(url, data, seconds, clients // procs)] * procs)
    return sum(counts) / seconds


def download(url: str) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        with requests.get(url, stream=True, timeout=60) as r:
            r.raise_for_status()
            for _chunk in r.iter_content(1024 * 1024):
                pass
        best = min(best, time.perf_counter() - started)
    return best


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(field)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-http-"))
    tmp.chmod(0o755)  # nginx's workers run as an unprivileged user
    procs: list[subprocess.Popen[bytes]] = []
    try:
        root = tmp / "archive"
        calls = write_demo(root, end=date(2026, 3, 9), days=3, tz=ZoneInfo("UTC"))
        big_call = "1773000000.999"
        big_key = f"2026/03/09/in-200-300-20260309-120000-{big_call}.wav"
        make_big_wav(root / big_key, args.size_mb)

        gw_port, const_port, nginx_port = free_port(), free_port(), free_port()
        gw = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway",
                "serve",
                "--backend",
                "local",
                "--path",
                str(root),
                "--layout",
                "freepbx",
                "--timezone",
                "UTC",
                "--token",
                TOKEN,
                "--bind-to",
                f"127.0.0.1:{gw_port}",
                "--threads",
                str(THREADS),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(gw)
        procs.append(
            subprocess.Popen([sys.executable, "-c", CONSTANT_APP, str(const_port), str(THREADS)])
        )
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        procs.append(
            subprocess.Popen(
                [nginx, "-c", str(nginx_conf(root, nginx_port, tmp)), "-p", str(tmp)],
                stderr=subprocess.DEVNULL,
            )
        )
        gw_url = f"http://127.0.0.1:{gw_port}"
        for url in (
            f"{gw_url}/healthz",
            f"http://127.0.0.1:{const_port}/search/",
            f"http://127.0.0.1:{nginx_port}/",
        ):
            wait_http(url)

        call = calls[6]
        fields = {"token": TOKEN, "callid": call.callid, "timestamp": call.start.isoformat()}
        search_rps = throughput(f"{gw_url}/search/", fields, args.seconds)
        const_rps = throughput(f"http://127.0.0.1:{const_port}/search/", fields, args.seconds)
        print(
            f"search, 16 clients:   gateway {search_rps:8.0f} req/s   constant falcon "
            f"{const_rps:8.0f} req/s   ratio {search_rps / const_rps:.2f}"
        )

        answer = requests.post(
            f"{gw_url}/search/", data={"token": TOKEN, "callid": big_call}, timeout=10
        ).json()
        link = answer["files"][0]["url"]
        gw_s = download(link)
        nginx_s = download(f"http://127.0.0.1:{nginx_port}/{big_key}")
        mb = args.size_mb
        print(
            f"download {mb} MB:      gateway {gw_s:6.3f} s ({mb / gw_s:6.0f} MB/s)   nginx "
            f"{nginx_s:6.3f} s ({mb / nginx_s:6.0f} MB/s)   ratio (time) {gw_s / nginx_s:.2f}"
        )

        before = rss_kib(gw.pid, "VmRSS")
        errors: list[BaseException] = []

        def fetch() -> None:
            try:
                with requests.get(link, stream=True, timeout=120) as r:
                    for _chunk in r.iter_content(256 * 1024):
                        pass
            except BaseException as exc:  # reported below
                errors.append(exc)

        started = time.perf_counter()
        clients = [threading.Thread(target=fetch) for _ in range(args.clients)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        took = time.perf_counter() - started
        peak = rss_kib(gw.pid, "VmHWM")
        print(
            f"{args.clients} x {mb} MB at once:  {took:.1f} s, gateway RSS before "
            f"{before / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB"
            + (f", {len(errors)} client errors" if errors else "")
        )
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
