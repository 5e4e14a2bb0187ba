"""Searching S3 sources through the layouts and placeholders, by the Python API and the CLI."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.plugins import load_plugins
from gateway.query import Query
from gateway.search import SearchSettings, search
from gateway.sources import StoreSource, open_sources
from tests.conftest import run_gateway
from tests.s3.conftest import BucketFactory, S3Env

UTC_ZONE = ZoneInfo("UTC")
CALL = "1773047410.1"
LATE = "1773100690.7"  # 23:58:10 on 2026-03-09
UUID = "0b4a6a36-5d1e-4c3b-9d7e-aaaaaaaaaaaa"

FREEPBX = {
    f"pbx1/2026/03/09/in-100-200-20260309-101010-{CALL}.wav": b"RIFF" + b"a" * 500,
    f"pbx1/2026/03/09/out-200-100-20260309-101010-{CALL}.wav": b"RIFF" + b"b" * 300,
    f"pbx1/2026/03/09/in-100-200-20260309-101010-{CALL}2.wav": b"other call",
    f"pbx1/2026/03/09/in-100-200-20260309-235810-{LATE}.wav": b"RIFF" + b"late" * 20,
    "pbx1/2026/03/08/in-100-200-20260308-090000-1772960400.3.wav": b"RIFF" + b"c" * 100,
    "pbx1/2026/03/10/q-300-400-20260310-090000-1773133200.2.mp3": b"ID3" + b"d" * 100,
    "pbx1/notes/readme.txt": b"not audio",
}
FUSION = {
    f"fusion/tenant1.example/archive/2026/Mar/09/{UUID}.wav": b"RIFF" + b"t1" * 100,
    "fusion/tenant2.example/archive/2026/Mar/09/11111111-2222-3333-4444-555555555555.wav": b"t2",
}
FLAT = {
    f"flat/a/b/c/QSAMPLE-{CALL}.wav": b"RIFF" + b"q" * 64,
    "flat/a/other-1700000000.1.wav": b"RIFF",
}


@pytest.fixture(scope="module")
def bucket(make_bucket: BucketFactory) -> str:
    return make_bucket({**FREEPBX, **FUSION, **FLAT})


def sources(s3env: S3Env, path: str, layout: str | None = None) -> list[StoreSource]:
    """Sources from a --path value, with the test endpoint's credentials on each store."""
    built = open_sources(path, load_plugins(), layout=layout)
    for source in built:
        original = source.store
        prefix = original.settings.prefix  # type: ignore[attr-defined]
        bucket = original.settings.bucket  # type: ignore[attr-defined]
        source.store = s3env.store(bucket, prefix)
        original.close()
    return built


def listed_prefixes(source: StoreSource) -> list[tuple[str, str | None]]:
    """Record every ListObjectsV2 the store sends (through botocore's own event hooks) from
    now on: after the source's one-off check, which lists one key to see that the prefix is
    there."""
    source.check()
    calls: list[tuple[str, str | None]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        calls.append((params.get("Prefix", ""), params.get("Delimiter")))

    client = source.store._get_client()  # type: ignore[attr-defined]
    client.meta.events.register("provide-client-params.s3.ListObjectsV2", record)
    return calls


def keys(found: list[Any]) -> list[str]:
    return [r.key for r in found]


def test_freepbx_layout_lists_only_the_call_day(s3env: S3Env, bucket: str) -> None:
    [source] = sources(s3env, s3env.url(bucket, "pbx1"), "freepbx")
    calls = listed_prefixes(source)
    query = Query(CALL, start=datetime(2026, 3, 9, 10, 10, 10, tzinfo=UTC_ZONE))
    found = search([source], query, SearchSettings(timezone=UTC_ZONE))
    assert keys(found) == [
        f"2026/03/09/in-100-200-20260309-101010-{CALL}.wav",
        f"2026/03/09/out-200-100-20260309-101010-{CALL}.wav",
    ]
    assert found[0].size == 504
    assert calls == [("pbx1/2026/03/09/", "/")]
    source.close()


def test_freepbx_lookback_lists_the_neighbouring_day(s3env: S3Env, bucket: str) -> None:
    [source] = sources(s3env, s3env.url(bucket, "pbx1"), "freepbx")
    calls = listed_prefixes(source)
    query = Query(LATE, start=datetime(2026, 3, 10, 0, 3, tzinfo=UTC_ZONE))
    found = search([source], query, SearchSettings(timezone=UTC_ZONE))
    assert keys(found) == [f"2026/03/09/in-100-200-20260309-235810-{LATE}.wav"]
    assert sorted(calls) == [("pbx1/2026/03/09/", "/"), ("pbx1/2026/03/10/", "/")]
    source.close()


def test_freepbx_without_timestamp_scans_and_filters_day_folders(s3env: S3Env, bucket: str) -> None:
    [source] = sources(s3env, s3env.url(bucket, "pbx1"), "freepbx")
    found = search([source], Query("1773133200.2"), SearchSettings(timezone=UTC_ZONE))
    assert keys(found) == ["2026/03/10/q-300-400-20260310-090000-1773133200.2.mp3"]
    assert found[0].mime == "audio/mpeg"
    source.close()


def test_placeholders_in_the_path(s3env: S3Env, bucket: str) -> None:
    url = s3env.url(bucket, "pbx1/%YY/%MM/%DD")
    [source] = sources(s3env, url)
    calls = listed_prefixes(source)
    query = Query(CALL, start=datetime(2026, 3, 9, 12, tzinfo=UTC_ZONE))
    found = search([source], query, SearchSettings(timezone=UTC_ZONE))
    assert len(found) == 2
    assert all(k.startswith("2026/03/09/") for k in keys(found))
    assert [prefix for prefix, _ in calls] == ["pbx1/2026/03/09/"]
    source.close()


def test_fusionpbx_layout_with_and_without_tenant(s3env: S3Env, bucket: str) -> None:
    [source] = sources(s3env, s3env.url(bucket, "fusion"), "fusionpbx")
    start = datetime(2026, 3, 9, 15, tzinfo=UTC_ZONE)
    settings = SearchSettings(timezone=UTC_ZONE)
    expected = [f"tenant1.example/archive/2026/Mar/09/{UUID}.wav"]
    calls = listed_prefixes(source)
    assert keys(search([source], Query(UUID, start=start, tenant="tenant1.example"), settings)) == (
        expected
    )
    assert calls == [("fusion/tenant1.example/archive/2026/Mar/09/", "/")]
    calls.clear()
    # Without a tenant the tenant level is expanded from CommonPrefixes, one folder listing.
    assert keys(search([source], Query(UUID, start=start), settings)) == expected
    assert calls[0] == ("fusion/", "/")
    assert sorted(calls[1:]) == [
        ("fusion/tenant1.example/archive/2026/Mar/09/", "/"),
        ("fusion/tenant2.example/archive/2026/Mar/09/", "/"),
    ]
    assert keys(search([source], Query(UUID, start=start, tenant="nobody.example"), settings)) == []
    source.close()


def test_month_name_placeholder_with_tenant(s3env: S3Env, bucket: str) -> None:
    [source] = sources(s3env, s3env.url(bucket, "fusion/%TE/archive/%YY/%ME/%DD"))
    query = Query(UUID, start=datetime(2026, 3, 9, 15, tzinfo=UTC_ZONE), tenant="tenant1.example")
    found = search([source], query, SearchSettings(timezone=UTC_ZONE))
    assert keys(found) == [f"tenant1.example/archive/2026/Mar/09/{UUID}.wav"]
    source.close()


def test_flat_layout_searches_recursively(s3env: S3Env, bucket: str) -> None:
    [source] = sources(s3env, s3env.url(bucket, "flat"))
    calls = listed_prefixes(source)
    found = search([source], Query(CALL), SearchSettings(timezone=UTC_ZONE))
    assert keys(found) == [f"a/b/c/QSAMPLE-{CALL}.wav"]
    assert calls == [("flat/", None)]
    source.close()


def test_sources_are_tried_in_order(s3env: S3Env, bucket: str) -> None:
    path = s3env.url(bucket, "flat") + "," + s3env.url(bucket, "pbx1/%YY/%MM/%DD")
    flat, dated = sources(s3env, path)
    query = Query(CALL, start=datetime(2026, 3, 9, 12, tzinfo=UTC_ZONE))
    found = search([flat, dated], query, SearchSettings(timezone=UTC_ZONE, search_all=True))
    assert [r.source for r in found] == [flat.id] + [dated.id] * 2
    flat.close()
    dated.close()


# -- through the real command line ------------------------------------------------------


def gateway(s3env: S3Env, *args: str, env: dict[str, str] | None = None) -> Any:
    return run_gateway(*args, env=env or s3env.environ(), timeout=120)


def test_cli_search_and_get(s3env: S3Env, bucket: str, tmp_path: Path) -> None:
    path = s3env.url(bucket, "pbx1")
    done = gateway(s3env, "search", "--path", path, "--layout", "freepbx", "--timezone", "UTC",
                   "--callid", CALL, "--timestamp", "2026-03-09.10:10:10", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    files = json.loads(done.stdout)
    assert [f["key"] for f in files] == [
        f"2026/03/09/in-100-200-20260309-101010-{CALL}.wav",
        f"2026/03/09/out-200-100-20260309-101010-{CALL}.wav",
    ]
    target = tmp_path / "out"
    done = gateway(s3env, "get", "--path", path, "--layout", "freepbx", "--timezone", "UTC",
                   "--callid", CALL, "--timestamp", "2026-03-09.10:10:10",
                   "-o", str(target))  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    for key in (f["key"] for f in files):
        assert (target / key.rsplit("/", 1)[1]).read_bytes() == FREEPBX[f"pbx1/{key}"]


def test_cli_wrong_credentials_exit_3_without_the_secret(s3env: S3Env, bucket: str) -> None:
    env = s3env.environ()
    wrong = "not-the-secret-" + s3env.credentials.secret_key[:5]
    env["AWS_SECRET_ACCESS_KEY"] = wrong
    done = gateway(s3env, "search", "--path", s3env.url(bucket, "pbx1"), "--callid", CALL,
                   env=env)  # fmt: skip
    stderr = done.stderr.decode()
    assert done.returncode == 3, stderr
    assert f"s3://{bucket}/pbx1" in stderr
    assert wrong not in stderr
    assert s3env.credentials.secret_key not in stderr
    assert "Traceback" not in stderr


def test_cli_missing_bucket(s3env: S3Env) -> None:
    done = gateway(s3env, "search", "--path", s3env.url("gw-test-missing-bucket"),
                   "--callid", CALL)  # fmt: skip
    assert done.returncode == 2
    assert "gw-test-missing-bucket" in done.stderr.decode()
    assert "does not exist" in done.stderr.decode()
