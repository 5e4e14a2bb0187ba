"""S3 store speed on a real SeaweedFS: a narrowed search in 100,000 keys and a 50 MB download.

Run by hand: ``.venv/bin/python bench/s3.py [--keys N] [--size-mb M] [--dir DIR]``. Starts its
own SeaweedFS on loopback (the test suite's starter, tests/s3/server.py); the bucket is filled
once (empty objects in FreePBX day folders, concurrent puts) and its data folder is kept in DIR
between runs. Prints:

- a FreePBX-layout search narrowed by a timestamp, next to one raw ``list_objects_v2`` of the
  same day folder (the least any S3 client can do) and a full paginated listing of the bucket
  (what a blind scan costs), with the folders the search listed;
- a download through ``S3Store.open`` (one ranged GetObject, streamed in chunks), next to
  boto3's ``download_fileobj`` of the same object (parallel ranged GETs) and a single-threaded
  ``download_fileobj``, as ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the project, for tests.*

from boto3.s3.transfer import TransferConfig

from gateway.plugins import load_plugins
from gateway.query import Query
from gateway.search import SearchSettings, search
from gateway.sources import open_sources
from gateway_s3.store import S3Store
from tests.s3.conftest import put_objects
from tests.s3.server import SeaweedServer

BUCKET = "bench"
DAYS = 365
FIRST_DAY = datetime(2025, 1, 1, tzinfo=UTC)
BIG_KEY = "big/in-1-2-20250101-000000-1735689600.0.wav"


def freepbx_keys(count: int) -> list[tuple[str, datetime]]:
    """``count`` FreePBX recording keys spread over a year, with each call's start."""
    per_day = count // DAYS
    keys = []
    n = 0
    for d in range(DAYS):
        day = FIRST_DAY + timedelta(days=d)
        today = per_day + (1 if d < count - per_day * DAYS else 0)
        for i in range(today):
            moment = day + timedelta(seconds=i * 86400 // max(today, 1))
            uid = f"{int(moment.timestamp())}.{n}"
            name = f"in-200-3912345{n % 1000:03d}-{moment:%Y%m%d-%H%M%S}-{uid}.wav"
            keys.append((f"{moment:%Y/%m/%d}/{name}", moment))
            n += 1
    return keys


def populate(admin: Any, count: int, size_mb: int) -> None:
    marker = f"_complete-{count}-{size_mb}"
    try:
        admin.head_object(Bucket=BUCKET, Key=marker)
        return
    except Exception:
        print(f"filling bucket {BUCKET!r}: {count} keys and {size_mb} MB (once)...", flush=True)
    with contextlib.suppress(admin.exceptions.BucketAlreadyOwnedByYou):
        admin.create_bucket(Bucket=BUCKET)
    started = time.monotonic()
    put_objects(admin, BUCKET, ((k, b"") for k, _ in freepbx_keys(count)), workers=64)
    admin.put_object(Bucket=BUCKET, Key=BIG_KEY, Body=os.urandom(size_mb * 1024 * 1024))
    admin.put_object(Bucket=BUCKET, Key=marker, Body=b"")
    print(f"  filled in {time.monotonic() - started:.1f} s", flush=True)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median seconds over ``repeat`` runs (after one warm-up), and the last result."""
    result = fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


class Sink:
    """A write-only file that counts bytes (so disk speed plays no part)."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/gateway-bench-s3"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    server = SeaweedServer(args.dir, keep_data=True)
    server.start()
    try:
        admin = server.boto3_client()
        populate(admin, args.keys, args.size_mb)
        run(server, admin, args)
        admin.close()
    finally:
        server.stop()


def run(server: SeaweedServer, admin: Any, args: argparse.Namespace) -> None:
    url = f"s3://{BUCKET}?endpoint={server.endpoint}&region=us-east-1&path_style=1"

    def with_credentials(store: Any) -> S3Store:
        settings = replace(
            store.settings,
            access_key_id=server.credentials.access_key,
            secret_access_key=server.credentials.secret_key,
        )
        store.close()
        return S3Store(settings)

    # -- narrowed search ------------------------------------------------------------------
    [source] = open_sources(url, load_plugins(), layout="freepbx")
    source.store = with_credentials(source.store)
    listed: list[str] = []
    source.store._get_client().meta.events.register(
        "provide-client-params.s3.ListObjectsV2",
        lambda params, **_: listed.append(params.get("Prefix", "")),
    )
    keys = freepbx_keys(args.keys)
    key, start = keys[len(keys) // 2 + 7]
    callid = key.rsplit("-", 1)[1].removesuffix(".wav")
    query = Query(callid, start=start)
    settings = SearchSettings(timezone=ZoneInfo("UTC"))
    search_s, found = timed(lambda: search([source], query, settings), args.repeat)
    assert [r.key for r in found] == [key], found
    search_listed = sorted(set(listed))

    day_prefix = key.rsplit("/", 1)[0] + "/"
    raw_s, _ = timed(
        lambda: admin.list_objects_v2(Bucket=BUCKET, Prefix=day_prefix, Delimiter="/"),
        args.repeat,
    )

    def full_listing() -> int:
        pages = admin.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        return sum(len(p.get("Contents", ())) for p in pages)

    full_s, total = timed(full_listing, 1)

    print(f"\nbucket: {total} keys; call {callid} on {start:%Y-%m-%d %H:%M:%S}Z")
    print(f"{'search':<44}{'seconds':>10}{'ratio':>10}")
    print(f"{'raw list_objects_v2 of the day folder':<44}{raw_s:>10.4f}{1:>10.2f}")
    print(f"{'gateway search, freepbx layout + timestamp':<44}{search_s:>10.4f}"
          f"{search_s / raw_s:>10.2f}")  # fmt: skip
    print(f"{'full paginated listing of the bucket':<44}{full_s:>10.4f}{full_s / raw_s:>10.2f}")
    print(f"prefixes the narrowed search listed: {search_listed}")

    # -- download ---------------------------------------------------------------------------
    size = admin.head_object(Bucket=BUCKET, Key=BIG_KEY)["ContentLength"]
    store = source.store

    def through_store() -> int:
        return sum(len(chunk) for chunk in store.open(BIG_KEY))

    def boto3_download(config: TransferConfig | None) -> Callable[[], int]:
        def download() -> int:
            sink = Sink()
            admin.download_fileobj(BUCKET, BIG_KEY, sink, Config=config)
            return sink.size

        return download

    store_s, got = timed(through_store, args.repeat)
    assert got == size
    boto_s, got = timed(boto3_download(None), args.repeat)
    assert got == size
    single_s, got = timed(boto3_download(TransferConfig(use_threads=False)), args.repeat)
    assert got == size
    mb = size / 1024 / 1024
    print(f"\ndownload of {mb:.0f} MB")
    print(f"{'method':<44}{'seconds':>10}{'MB/s':>10}{'ratio':>10}")
    for label, seconds in (
        ("boto3 download_fileobj (default, threads)", boto_s),
        ("boto3 download_fileobj (one thread)", single_s),
        ("S3Store.open, streamed chunks", store_s),
    ):
        print(f"{label:<44}{seconds:>10.3f}{mb / seconds:>10.1f}{seconds / boto_s:>10.2f}")
    source.close()


if __name__ == "__main__":
    main()
