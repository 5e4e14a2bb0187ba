"""SMB store speed over loopback, against Samba's own ``smbclient`` on the same share and file.

Run by hand: ``.venv/bin/python bench/smb.py [--days N] [--per-day N] [--size-mb N]``.
Starts its own smbd (as the tests do, ``tests/smb/server.py``) on a free loopback port with a
FreePBX archive (empty files, ``YYYY/MM/DD``) and one random file of ``--size-mb`` MiB, then
times, ``--repeat`` rounds, each pair back to back in the same round (alternating which goes
first) so a busy machine slows both alike:

- a narrowed search (``--layout freepbx`` with a timestamp) through ``open_sources``/``search``,
  next to ``smbclient -c 'ls DAY/*ID*'`` listing the same day folder;
- a download of the big file through the store (``open`` and iterate the chunks), next to
  ``smbclient -c 'get FILE /dev/null'``; also ``smbclient -c 'ls FILE'``, what one smbclient
  run costs besides the transfer (process start, connection, logon);

and prints medians, the spread (min-max), the CPU time (the store's process time; smbclient's
children time) and the ratio store / smbclient per round (below 1: the store is faster).
``smbclient`` gets its credentials from an authentication file, not the command line.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gateway_smb.store as smb_store
from gateway.plugins import load_plugins
from gateway.query import Query
from gateway.search import SearchSettings, search
from gateway.sources import StoreSource, open_sources
from tests.smb.server import SHARE, SambaServer, smbd_missing

FIRST_DAY = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
BIG = "big/in-1-2-20250101-080000-1735718400.1.wav"


def populate(root: Path, days: int, per_day: int, size_mb: int) -> tuple[str, datetime]:
    """A FreePBX archive; returns the call id and start of a call in the middle of it."""
    for d in range(days):
        day = FIRST_DAY + timedelta(days=d)
        folder = root / day.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_day):
            start = day + timedelta(minutes=n)
            uid = f"{int(start.timestamp())}.{n}"
            name = f"in-200-3001-{start:%Y%m%d-%H%M%S}-{uid}.wav"
            (folder / name).touch()
    big = root / BIG
    big.parent.mkdir(parents=True, exist_ok=True)
    with big.open("wb") as out:
        for _ in range(size_mb):
            out.write(os.urandom(1024 * 1024))
    target = FIRST_DAY + timedelta(days=days // 2, minutes=per_day // 2)
    return f"{int(target.timestamp())}.{per_day // 2}", target


def _cpu() -> float:
    """CPU seconds used so far by this process and the children it has waited for."""
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Timing:
    """Wall and CPU seconds of the runs of one thing."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def run(self, fn: Callable[[], object]) -> None:
        """Time ``fn``; its CPU time is this process's, plus that of the children it waited for."""
        before, started = _cpu(), time.perf_counter()
        fn()
        self.wall.append(time.perf_counter() - started)
        self.cpu.append(_cpu() - before)

    def row(self, label: str, size: float | None = None) -> str:
        wall = statistics.median(self.wall)
        text = (
            f"{label:40} {wall * 1000:8.1f} [{min(self.wall) * 1000:7.1f}-"
            f"{max(self.wall) * 1000:7.1f}] ms  cpu {statistics.median(self.cpu) * 1000:6.1f} ms"
        )
        return text + (f"  {size / wall / 1e6:6.0f} MB/s" if size else "")


def interleaved(
    rounds: int, a: Callable[[], object], b: Callable[[], object]
) -> tuple[Timing, Timing]:
    """``a`` and ``b`` back to back, ``rounds`` times, alternating which goes first."""
    ta, tb = Timing(), Timing()
    a(), b()  # warm up: connections, caches
    for n in range(rounds):
        pair = [(ta, a), (tb, b)]
        for timing, fn in pair if n % 2 == 0 else pair[::-1]:
            timing.run(fn)
    return ta, tb


def ratios(a: Timing, b: Timing) -> str:
    """Median and spread of ``a``'s wall time over ``b``'s, round by round."""
    each = sorted(x / y for x, y in zip(a.wall, b.wall, strict=True))
    return f"{statistics.median(each):.2f} [{each[0]:.2f}-{each[-1]:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--read-size", type=int, default=smb_store.READ_SIZE)
    parser.add_argument("--read-ahead", type=int, default=smb_store.READ_AHEAD)
    args = parser.parse_args()
    missing = smbd_missing()
    if missing or shutil.which("smbclient") is None:
        sys.exit(f"cannot run: {missing or 'smbclient is not installed'}")
    smb_store.READ_SIZE = args.read_size
    smb_store.READ_AHEAD = args.read_ahead

    with tempfile.TemporaryDirectory(prefix="bench-smb-") as tmp:
        server = SambaServer(Path(tmp))
        print(f"populating {args.days} days x {args.per_day} files + {args.size_mb} MB file...")
        callid, start = populate(server.share_dir, args.days, args.per_day, args.size_mb)
        big_bytes = (server.share_dir / BIG).stat().st_size
        auth = Path(tmp) / "auth"
        auth.write_text(f"username = {server.user}\npassword = {server.password}\n")
        auth.chmod(0o600)
        with server:
            os.environ["GATEWAY_SMB_PASSWORD"] = server.password
            plugins = load_plugins()
            sources = open_sources(server.url(), plugins, layout="freepbx")
            settings = SearchSettings(timezone=ZoneInfo("UTC"))
            assert isinstance(sources[0], StoreSource)
            store = sources[0].store
            query = Query(callid, start=start)

            def smbclient_cli(command: str) -> None:
                subprocess.run(
                    ["smbclient", f"//127.0.0.1/{SHARE}", "-p", str(server.port),
                     "-A", str(auth), "-m", "SMB3", "-c", command],
                    check=True, capture_output=True,
                )  # fmt: skip

            started = time.perf_counter()
            found = search(sources, query, settings)
            cold = time.perf_counter() - started
            assert len(found) == 1, found
            day = start.strftime("%Y/%m/%d")
            search_t, ls_t = interleaved(
                args.repeat,
                lambda: search(sources, query, settings),
                lambda: smbclient_cli(f"ls {day}/*{callid}*"),
            )

            def download() -> None:
                total = sum(len(c) for c in store.open(BIG))
                assert total == big_bytes

            get_t, cli_t = interleaved(
                args.repeat, download, lambda: smbclient_cli(f"get {BIG} /dev/null")
            )
            _, fixed_t = interleaved(args.repeat, lambda: None, lambda: smbclient_cli(f"ls {BIG}"))
            for source in sources:
                source.close()

    label = f"{args.size_mb} MiB"
    print(f"\nshare: {args.days * args.per_day} files in {args.days} day folders; read size "
          f"{args.read_size}, read-ahead {args.read_ahead}; {args.repeat} rounds")  # fmt: skip
    print(f"{'':40} {'median [min-max]':>25}")
    print(f"{'narrowed search, first (logs on)':40} {cold * 1000:8.1f} ms")
    print(search_t.row("narrowed search (store)"))
    print(ls_t.row("smbclient ls of the day folder"))
    print(f"  store/smbclient: {ratios(search_t, ls_t)} (smbclient pays process start and logon)")
    print(get_t.row(f"{label} download (store)", big_bytes))
    print(cli_t.row(f"{label} smbclient get", big_bytes))
    print(fixed_t.row("smbclient ls of the file (no transfer)"))
    print(f"  store/smbclient get: {ratios(get_t, cli_t)}")
    transfer = statistics.median(cli_t.wall) - statistics.median(fixed_t.wall)
    print(f"  store/(smbclient get - ls): {statistics.median(get_t.wall) / transfer:.2f}"
          " (medians: smbclient's transfer alone, without its start and logon)")  # fmt: skip


if __name__ == "__main__":
    main()
