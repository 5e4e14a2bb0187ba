"""SMB store speed over loopback, against Samba's own ``smbclient`` on the same share and file.

Run by hand: ``.venv/bin/python bench/smb.py [--days N] [--per-day N] [--size-mb N]``.
Starts its own smbd (as the tests do, ``tests/smb/server.py``) on a free loopback port with a
FreePBX archive (empty files, ``YYYY/MM/DD``) and one random file of ``--size-mb`` MB, then
times, best of ``--repeat`` runs:

- a narrowed search (``--layout freepbx`` with a timestamp) through ``open_sources``/``search``,
  next to ``smbclient -c 'ls DAY/*ID*'`` listing the same day folder;
- a download of the big file through the store (``open`` and iterate the chunks), next to
  ``smbclient -c 'get FILE /dev/null'``.

and prints the times and the ratios (store / smbclient; below 1 means the store is faster).
``smbclient`` gets its credentials from an authentication file, not the command line.
"""

from __future__ import annotations

import argparse
import os
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
from gateway.sources import open_sources
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


def best(runs: int, fn: Callable[[], object]) -> tuple[float, float]:
    """(best, median) wall time of ``runs`` calls."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=300)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
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
            search_t = best(args.repeat, lambda: search(sources, query, settings))
            ls_t = best(args.repeat, lambda: smbclient_cli(f"ls {day}/*{callid}*"))

            def download() -> None:
                total = sum(len(c) for c in store.open(BIG))
                assert total == big_bytes

            get_t = best(args.repeat, download)
            cli_t = best(args.repeat, lambda: smbclient_cli(f"get {BIG} /dev/null"))
            for source in sources:
                source.close()

    mb = big_bytes / 1e6
    label = f"{args.size_mb} MiB"
    print(f"\nshare: {args.days * args.per_day} files in {args.days} day folders; "
          f"read size {args.read_size}, read-ahead {args.read_ahead}")  # fmt: skip
    print(f"{'':38} {'best':>9} {'median':>9}")
    print(f"{'narrowed search, first (logs on)':38} {cold * 1000:8.1f}ms")
    print(f"{'narrowed search (store)':38} {search_t[0] * 1000:8.1f}ms {search_t[1] * 1000:8.1f}ms")
    print(f"{'smbclient ls of the day folder':38} {ls_t[0] * 1000:8.1f}ms {ls_t[1] * 1000:8.1f}ms")
    print(f"  ratio store/smbclient: {search_t[0] / ls_t[0]:.2f} "
          "(smbclient pays process start and logon each run)")  # fmt: skip
    print(f"{f'{label} download (store)':38} {get_t[0]:8.3f}s  {get_t[1]:8.3f}s"
          f"  = {mb / get_t[0]:.0f} MB/s")  # fmt: skip
    print(f"{f'{label} smbclient get':38} {cli_t[0]:8.3f}s  {cli_t[1]:8.3f}s"
          f"  = {mb / cli_t[0]:.0f} MB/s")  # fmt: skip
    print(f"  ratio store/smbclient: {get_t[0] / cli_t[0]:.2f}")


if __name__ == "__main__":
    main()
