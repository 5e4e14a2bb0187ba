"""Search speed on a 1,000,000-file FreePBX archive, against `find` on the same tree.

Run by hand: ``.venv/bin/python bench/search.py [--files N] [--root DIR]``. The archive is
generated once (empty files, FreePBX layout, 365 days) and kept between runs. Prints the time
of a layout-narrowed search, a placeholder-narrowed search, a flat full-tree search and
``find ROOT -name '*ID*'``, and their ratios to ``find``; also the folders the narrowed search
listed, which must be only the ones its day window names.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gateway.plugins import load_plugins
from gateway.query import Query
from gateway.search import SearchSettings, search
from gateway.sources import open_sources
from gateway.storage import Entry

DAYS = 365
FIRST_DAY = datetime(2025, 1, 1, tzinfo=UTC)


def generate(root: Path, files: int) -> None:
    marker = root / f".complete-{files}"
    if marker.exists():
        return
    print(f"generating {files} files below {root} (once)...", file=sys.stderr)
    per_day = files // DAYS
    n = 0
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        folder = root / day.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        count = per_day + (1 if d < files - per_day * DAYS else 0)
        for i in range(count):
            moment = day + timedelta(seconds=i * 86400 // max(count, 1))
            uid = f"{int(moment.timestamp())}.{n}"
            name = f"in-200-3912345{n % 1000:03d}-{moment:%Y%m%d-%H%M%S}-{uid}.wav"
            os.close(os.open(folder / name, os.O_CREAT | os.O_WRONLY, 0o644))
            n += 1
    marker.touch()


class ListingSpy:
    """Wraps a real store and records which folders are listed."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.listed: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def list(self, prefix: str, **kw: Any) -> Iterator[Entry]:
        self.listed.append(prefix)
        return self._store.list(prefix, **kw)  # type: ignore[no-any-return]


def timed(fn: Any, repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--root", type=Path, default=Path("/tmp/gateway-bench-archive"))
    args = parser.parse_args()
    generate(args.root, args.files)

    # a call in the middle of the year
    target = next((args.root / "2025/07/02").iterdir()).name
    callid = target.rsplit("-", 1)[1].removesuffix(".wav")
    start = datetime.fromtimestamp(float(callid.split(".")[0]), UTC)
    utc = ZoneInfo("UTC")
    settings = SearchSettings(timezone=utc)
    query = Query(callid, start=start)
    plugins = load_plugins()

    def run(path: str, layout: str | None, q: Query) -> tuple[float, list[Any], list[str]]:
        [source] = open_sources(path, plugins, layout=layout)
        spy = ListingSpy(source.store)
        source.store = spy
        seconds, found = timed(lambda: search([source], q, settings), 5 if q.start else 1)
        return seconds, found, sorted(set(spy.listed))

    narrowed = run(str(args.root), "freepbx", query)
    placeholder = run(f"{args.root}/%YY/%MM/%DD", None, query)
    flat = run(str(args.root), None, Query(callid))
    find_s, _ = timed(
        lambda: subprocess.run(
            ["find", str(args.root), "-name", f"*{callid}*"], check=True, capture_output=True
        ),
        1,
    )
    for label, (_, found, _) in (("narrowed", narrowed), ("placeholder", placeholder),
                                 ("flat", flat)):  # fmt: skip
        assert [r.name for r in found] == [target], (label, found)

    print(f"archive: {args.files} files, call {callid}")
    print(f"{'search':<28}{'seconds':>10}{'vs find':>10}")
    for label, seconds in (
        ("layout freepbx + timestamp", narrowed[0]),
        ("%YY/%MM/%DD + timestamp", placeholder[0]),
        ("flat full scan", flat[0]),
        ("find -name '*ID*'", find_s),
    ):
        print(f"{label:<28}{seconds:>10.4f}{seconds / find_s:>10.4f}")
    print(f"folders listed by the narrowed search: {narrowed[2]}")
    print(f"folders listed by the placeholder search: {placeholder[2]}")


if __name__ == "__main__":
    main()
