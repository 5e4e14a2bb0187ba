"""A bounded soak of one real ``gateway serve`` over three real back-ends, with faults.

Used by ``tests/proof/test_soak.py`` (CI, about a minute) and ``bench/soak.py`` (by hand, two
minutes by default). The gateway's ``--path`` is a local archive, an SMB share (a real smbd)
and an S3 bucket (a real SeaweedFS), in that order; each holds its own calls (demo archives of
different months plus one 8 MiB recording), so a search for a call of source N asks sources
1..N and a download touches only its own source.

``clients`` threads (each with its own HTTP session and a timeout on every request) loop until
the deadline, mixing searches, full downloads and random ranges; every byte is checked against
the file written to the back-end. Optionally smbd is killed (SIGKILL, its whole process tree)
and later SeaweedFS, each restarted a while later; the gateway is never restarted. The
gateway's resident memory is sampled every second. ``Soak.report()`` holds the figures,
``Soak.problems()`` what broke the rules:

- outside a fault window (from the kill to ``GRACE`` seconds after the restart) every request
  gets 200/206 and the right bytes;
- inside it, a request that touches the stopped source gets the right answer or a ``503`` JSON
  error (a download already streaming when the server died may be cut short); a request that
  does not touch it must still succeed; nothing may take longer than its timeout;
- after each restart, the source serves correct bytes again (recovery without a gateway
  restart);
- the three archives' checksums are the same before and after (the gateway is read-only).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

from gateway.demo import write_demo
from tests.conftest import GATEWAY
from tests.s3.server import SeaweedServer
from tests.smb.server import SambaServer

TZ = ZoneInfo("Europe/Rome")
TOKEN = "soak-token-5b1e0c7d"
SOURCES = ("local", "smb", "s3")
ENDS = {"local": date(2026, 3, 9), "smb": date(2026, 2, 9), "s3": date(2026, 1, 9)}
BIG_SIZE = 8 * 1024 * 1024
TIMEOUT = 30.0
"""Seconds any one client request may take (connect and each read)."""
GRACE = 5.0
"""Seconds after a restart during which a failure still counts as part of the fault."""


@dataclass(frozen=True)
class Call:
    source: str
    callid: str
    start: str
    files: dict[str, bytes]
    """File name -> the exact bytes the back-end holds."""


@dataclass
class Result:
    op: str
    source: str
    touches: tuple[str, ...]
    started: float
    seconds: float
    status: int | None
    ok: bool
    detail: str = ""
    nbytes: int = 0


@dataclass
class Window:
    source: str
    down: float
    up: float | None = None


@dataclass
class Soak:
    base: Path
    clients: int = 64
    duration: float = 60.0
    faults: bool = True
    seed: int = 9
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment of the gateway process (``bench/soak.py --env``: A/B runs)."""
    calls: list[Call] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    rss: list[tuple[float, int]] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    checksums: dict[str, tuple[str, str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- setting up ----------------------------------------------------------------------------

    def run(self) -> None:
        """Set everything up, soak, tear down; never raises for what it measures."""
        smb = SambaServer(self.base / "smbd")
        s3 = SeaweedServer(self.base / "s3")
        gw: subprocess.Popen[bytes] | None = None
        try:
            local_root = self.base / "local"
            self._archive("local", local_root)
            smb_root = smb.share_dir / "rec"
            self._archive("smb", smb_root)
            smb.start()
            s3.start()
            bucket = "soak"
            staging = self.base / "s3-staging"
            self._archive("s3", staging)
            admin = s3.boto3_client()
            admin.create_bucket(Bucket=bucket)
            for path in sorted(p for p in staging.rglob("*") if p.is_file()):
                key = "rec/" + path.relative_to(staging).as_posix()
                admin.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            sums: dict[str, Callable[[], str]] = {
                "local": lambda: tree_checksum(local_root),
                "smb": lambda: tree_checksum(smb.share_dir),
                "s3": lambda: bucket_checksum(admin, bucket),
            }
            before = {name: fn() for name, fn in sums.items()}
            s3_url = f"s3://{bucket}/rec?endpoint={s3.endpoint}&region=us-east-1&path_style=1"
            smb_url = smb.url("rec", password=smb.password, query="timeout=2&io_timeout=10")
            path = ",".join([str(local_root), smb_url, s3_url])
            env = {
                **os.environ,
                "AWS_ACCESS_KEY_ID": s3.credentials.access_key,
                "AWS_SECRET_ACCESS_KEY": s3.credentials.secret_key,
                "AWS_EC2_METADATA_DISABLED": "true",
                "GATEWAY_TOKEN": TOKEN,
                **self.env,
            }
            log = (self.base / "gateway.log").open("ab")
            gw = subprocess.Popen(
                [*GATEWAY, "serve", "--path", path, "--layout", "freepbx", "--timezone",
                 str(TZ), "--bind-to", "127.0.0.1:0", "--threads", "32"],
                stdout=subprocess.PIPE, stderr=log, env=env,
            )  # fmt: skip
            log.close()
            assert gw.stdout is not None
            banner = gw.stdout.readline().decode()
            if not banner.startswith("gateway: serving on http://"):
                raise RuntimeError(f"gateway did not start: {banner!r}")
            self.url = banner.split()[3]
            self._soak(gw.pid, smb, s3)
            after = {name: fn() for name, fn in sums.items()}
            self.checksums = {name: (before[name], after[name]) for name in sums}
            admin.close()
        finally:
            if gw is not None:
                gw.send_signal(signal.SIGTERM)
                try:
                    gw.wait(15)
                except subprocess.TimeoutExpired:
                    gw.kill()
                    gw.wait(5)
            smb.stop()
            s3.cleanup()

    def _archive(self, source: str, root: Path) -> None:
        demo = write_demo(root, end=ENDS[source], days=3, tz=TZ)
        for call in demo:
            files = {key.rsplit("/", 1)[1]: (root / key).read_bytes() for key in call.files}
            self.calls.append(Call(source, call.callid, call.start.isoformat(), files))
        start = datetime(ENDS[source].year, ENDS[source].month, ENDS[source].day, 12, tzinfo=TZ)
        callid = f"{int(start.timestamp())}.900"
        name = f"in-100-200-{start:%Y%m%d-%H%M%S}-{callid}.wav"
        data = random.Random(source).randbytes(BIG_SIZE)
        (root / f"{start:%Y/%m/%d}").mkdir(parents=True, exist_ok=True)
        (root / f"{start:%Y/%m/%d}" / name).write_bytes(data)
        self.calls.append(Call(source, callid, start.isoformat(), {name: data}))

    # -- soaking -------------------------------------------------------------------------------

    def _soak(self, pid: int, smb: SambaServer, s3: SeaweedServer) -> None:
        self.t0 = time.monotonic()
        self.deadline = self.t0 + self.duration
        stop = threading.Event()
        threads = [threading.Thread(target=self._sample_rss, args=(pid, stop), daemon=True)]
        threads += [
            threading.Thread(target=self._client, args=(n,), daemon=True)
            for n in range(self.clients)
        ]
        if self.faults:
            threads.append(threading.Thread(target=self._faults, args=(smb, s3), daemon=True))
        for t in threads:
            t.start()
        for t in threads[1:]:
            t.join(self.duration + 4 * TIMEOUT + 60)
            if t.is_alive():
                self.errors.append(f"thread {t.name} did not finish")
        stop.set()
        threads[0].join(5)

    def _sample_rss(self, pid: int, stop: threading.Event) -> None:
        status = Path(f"/proc/{pid}/status")
        while not stop.wait(1.0):
            try:
                line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS"))
            except (OSError, StopIteration):
                return
            self.rss.append((time.monotonic() - self.t0, int(line.split()[1]) * 1024))

    def _faults(self, smb: SambaServer, s3: SeaweedServer) -> None:
        plan: list[tuple[float, float, str, Callable[[], None], Callable[[], None]]] = [
            (0.20, 0.35, "smb", lambda: kill_tree(smb), smb.start),
            (0.50, 0.65, "s3", lambda: kill_tree(s3), s3.start),
        ]
        for down_at, up_at, source, kill, start in plan:
            self._sleep_until(down_at)
            window = Window(source, time.monotonic() - self.t0)
            with self._lock:
                self.windows.append(window)
            kill()
            self._sleep_until(up_at)
            try:
                start()
            except Exception as exc:
                self.errors.append(f"could not restart {source}: {exc}")
            window.up = time.monotonic() - self.t0

    def _sleep_until(self, fraction: float) -> None:
        delay = self.t0 + fraction * self.duration - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def _client(self, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        session = requests.Session()
        try:
            while time.monotonic() < self.deadline:
                call = rng.choice(self.calls)
                roll = rng.random()
                if roll < 0.4:
                    self._search(session, call)
                else:
                    self._download(session, rng, call, ranged=roll >= 0.7)
        finally:
            session.close()

    def _touches_search(self, call: Call) -> tuple[str, ...]:
        return SOURCES[: SOURCES.index(call.source) + 1]

    def _request(
        self, op: str, call: Call, touches: tuple[str, ...], send: Callable[[], Any]
    ) -> tuple[Any, Result]:
        started = time.monotonic()
        response: Any = None
        status: int | None = None
        detail = ""
        try:
            response = send()
            status = response.status_code
        except requests.Timeout:
            detail = "timeout"
        except requests.RequestException as exc:
            detail = f"{type(exc).__name__}"
        result = Result(op, call.source, touches, started - self.t0,
                        time.monotonic() - started, status, False, detail)  # fmt: skip
        return response, result

    def _search(self, session: requests.Session, call: Call) -> list[dict[str, Any]]:
        touches = self._touches_search(call)
        response, result = self._request(
            "search", call, touches,
            lambda: session.post(f"{self.url}/search/", timeout=TIMEOUT,
                                 data={"token": TOKEN, "callid": call.callid,
                                       "timestamp": call.start}),
        )  # fmt: skip
        files: list[dict[str, Any]] = []
        if result.status == 200:
            files = response.json()["files"]
            names = sorted(f["name"] for f in files)
            result.ok = names == sorted(call.files)
            if not result.ok:
                result.detail = f"found {names}"
        elif result.status is not None:
            result.detail = _error_of(response)
        self._record(result)
        return files

    def _download(
        self, session: requests.Session, rng: random.Random, call: Call, ranged: bool
    ) -> None:
        files = self._search(session, call)
        if not files:
            return
        link = rng.choice(files)
        data = call.files[link["name"]]
        headers = {}
        want = data
        if ranged and data:
            first = rng.randrange(len(data))
            last = rng.randrange(first, min(len(data), first + 512 * 1024))
            headers["Range"] = f"bytes={first}-{last}"
            want = data[first : last + 1]
        op = "range" if ranged else "download"
        response, result = self._request(
            op, call, (call.source,),
            lambda: session.get(link["url"], headers=headers, timeout=TIMEOUT),
        )  # fmt: skip
        if result.status in (200, 206):
            expected = 206 if "Range" in headers else 200
            result.ok = result.status == expected and response.content == want
            result.nbytes = len(response.content)
            if not result.ok:
                result.detail = f"{len(response.content)} bytes, want {len(want)} ({result.status})"
        elif result.status is not None:
            result.detail = _error_of(response)
        self._record(result)

    def _record(self, result: Result) -> None:
        with self._lock:
            self.results.append(result)

    # -- judging -------------------------------------------------------------------------------

    def _window_of(self, result: Result) -> Window | None:
        end = result.started + result.seconds
        for w in self.windows:
            up = (w.up if w.up is not None else self.duration) + GRACE
            if w.source in result.touches and result.started < up and end > w.down:
                return w
        return None

    def problems(self) -> list[str]:
        out = list(self.errors)
        for r in self.results:
            if r.seconds > TIMEOUT + 5 or r.detail == "timeout":
                out.append(f"{r.op} of {r.source} took {r.seconds:.1f}s: {r.detail}")
                continue
            if r.ok:
                continue
            window = self._window_of(r)
            if window is None:
                out.append(f"{r.op} of {r.source} at {r.started:.1f}s: {r.status} {r.detail}")
            elif r.status not in (503, None, 200, 206):
                out.append(f"{r.op} of {r.source} with {window.source} down: {r.status} {r.detail}")
            elif r.status is None and r.op == "search":
                out.append(f"search of {r.source} with {window.source} down: {r.detail}")
        for w in self.windows:
            if w.up is None:
                continue
            hit = [r for r in self.results if w.source in r.touches]
            refused = [r for r in hit if w.down + 1 < r.started < w.up and r.status == 503]
            healed = [r for r in hit if r.started > w.up + GRACE and r.ok and r.source == w.source]
            if not refused:
                out.append(f"no 503 while {w.source} was down")
            if not healed:
                out.append(f"{w.source} did not serve again after its restart")
        for name, (before, after) in self.checksums.items():
            if before != after:
                out.append(f"the {name} archive changed during the soak")
        if len(self.checksums) != len(SOURCES):
            out.append("the archives' checksums were not taken")
        return out[:50]

    def report(self) -> dict[str, Any]:
        by_op: dict[str, Any] = {}
        for op in ("search", "download", "range"):
            rs = [r for r in self.results if r.op == op]
            times = sorted(r.seconds for r in rs)
            by_op[op] = {
                "requests": len(rs),
                "ok": sum(r.ok for r in rs),
                "503": sum(r.status == 503 for r in rs),
                "failed_outside_faults": sum(not r.ok and self._window_of(r) is None for r in rs),
                "p50_ms": _pct(times, 0.50),
                "p95_ms": _pct(times, 0.95),
                "p99_ms": _pct(times, 0.99),
                "max_ms": round(1000 * times[-1], 1) if times else None,
            }
        down = [r for r in self.results if r.status == 503]
        return {
            "clients": self.clients,
            "duration_s": self.duration,
            "requests": len(self.results),
            "mib_checked": round(sum(r.nbytes for r in self.results if r.ok) / 2**20, 1),
            "by_op": by_op,
            "max_503_ms": round(1000 * max((r.seconds for r in down), default=0), 1),
            "windows": [(w.source, round(w.down, 1), round(w.up or -1, 1)) for w in self.windows],
            "rss_mib": [(round(t), round(v / 2**20, 1)) for t, v in self.rss],
            "checksums_equal": all(b == a for b, a in self.checksums.values()),
        }

    def rss_growth(self, warmup: float = 0.4) -> tuple[float, float]:
        """Peak resident MiB in the first and in the second half of what follows the warm-up
        (the first ``warmup`` of the run, while pools, thread stacks and malloc arenas fill).
        A leak keeps growing from one half to the next; a plateau does not."""
        cut = warmup * self.duration
        middle = cut + (self.duration - cut) / 2
        first = [v for t, v in self.rss if cut < t <= middle] or [0]
        second = [v for t, v in self.rss if t > middle] or [0]
        return max(first) / 2**20, max(second) / 2**20


def _error_of(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:80]!r}"
    return str(body.get("error", body))[:160]


def _pct(times: list[float], q: float) -> float | None:
    if not times:
        return None
    return round(1000 * times[min(len(times) - 1, int(q * len(times)))], 1)


def kill_tree(server: SambaServer | SeaweedServer) -> None:
    """SIGKILL a server and every process below it (by process id), then reap it."""
    process = server.process
    if process is None:
        return
    for pid in reversed(_descendants(process.pid)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(15)
    server.stop()  # forget the process, tidy up sockets


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    tree = [root]
    for pid in tree:
        tree.extend(child for child, parent in parents.items() if parent == pid)
    return tree


def tree_checksum(root: Path) -> str:
    """sha256 over the sorted relative paths and contents of every file below ``root``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def bucket_checksum(admin: Any, bucket: str) -> str:
    """The same over every object of a bucket (key and content)."""
    keys: list[str] = []
    for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys.extend(o["Key"] for o in page.get("Contents", ()))
    digest = hashlib.sha256()
    for key in sorted(keys):
        body = admin.get_object(Bucket=bucket, Key=key)["Body"].read()
        digest.update(key.encode() + b"\0")
        digest.update(hashlib.sha256(body).digest())
    return digest.hexdigest()


def iter_lines(report: dict[str, Any]) -> Iterator[str]:
    yield (
        f"{report['clients']} clients, {report['duration_s']:g} s, {report['requests']} requests, "
        f"{report['mib_checked']} MiB checked byte for byte"
    )
    for op, s in report["by_op"].items():
        yield (
            f"  {op:8} {s['requests']:6} requests, {s['ok']:6} ok, {s['503']:4} x 503, "
            f"{s['failed_outside_faults']} failed outside faults; latency ms p50 {s['p50_ms']} "
            f"p95 {s['p95_ms']} p99 {s['p99_ms']} max {s['max_ms']}"
        )
    yield f"  fault windows (source, down s, up s): {report['windows']}"
    yield f"  slowest 503: {report['max_503_ms']} ms"
    rss = report["rss_mib"]
    yield f"  RSS over time (s, MiB): {rss[:: max(1, len(rss) // 12)]}"
    yield f"  archives unchanged: {report['checksums_equal']}"


if __name__ == "__main__":
    sys.exit("run bench/soak.py")
