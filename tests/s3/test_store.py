"""The S3 store against a real S3 server: the store contract, listings, ranges, keys, errors."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from gateway.errors import ConfigError, Forbidden, NotFound, Unavailable
from gateway.sourceurl import SourceURL
from gateway.storage import CHUNK_SIZE, Presigner, Store, check_key
from gateway.testing import BIG, BIG_KEY, CONTRACT_FILES, StoreContract
from gateway_s3.store import S3Store
from tests.conftest import free_port
from tests.s3.conftest import BucketFactory, S3Env

PREFIX = "pbx1"
OUTSIDE = {
    "outside.wav": b"outside the prefix",
    "pbx10/2026/03/09/in-100-200-20260309-101010-1773047410.1.wav": b"sibling prefix",
    "pbx1.wav": b"next to the prefix",
}


@pytest.fixture(scope="module")
def contract_bucket(make_bucket: BucketFactory) -> str:
    objects = {f"{PREFIX}/{k}": v for k, v in CONTRACT_FILES.items()}
    return make_bucket({**objects, **OUTSIDE})


class TestS3Store(StoreContract):
    @pytest.fixture
    def contract_store(self, s3env: S3Env, contract_bucket: str) -> Any:
        store = s3env.store(contract_bucket, PREFIX)
        yield store
        store.close()

    @pytest.fixture
    def contract_secrets(self, s3env: S3Env) -> Sequence[str]:
        return (s3env.credentials.secret_key,)

    @pytest.fixture
    def contract_missing_root_store(self, s3env: S3Env, contract_bucket: str) -> Any:
        store = s3env.store(contract_bucket, "no-such-prefix")
        yield store
        store.close()

    @pytest.fixture(params=["server-down", "wrong-secret"])
    def contract_unreachable_store(
        self, request: pytest.FixtureRequest, s3env: S3Env, contract_bucket: str
    ) -> Any:
        if request.param == "server-down":  # nothing listens on that port
            down = replace(s3env, endpoint=f"http://127.0.0.1:{free_port()}")
            store = down.store(contract_bucket, PREFIX, connect_timeout="2", max_attempts="2")
        else:
            wrong = "wrong-" + s3env.credentials.secret_key[::-1]
            store = s3env.store(contract_bucket, PREFIX, secret=wrong)
        yield store
        store.close()


@pytest.fixture
def store(s3env: S3Env, contract_bucket: str) -> Any:
    s = s3env.store(contract_bucket, PREFIX)
    yield s
    s.close()


def test_capabilities_and_description(store: S3Store, s3env: S3Env, contract_bucket: str) -> None:
    assert isinstance(store, Store)
    assert isinstance(store, Presigner)
    assert store.description == f"s3://{contract_bucket}/{PREFIX} (endpoint {s3env.endpoint})"
    assert s3env.credentials.secret_key not in repr(store.settings)
    assert s3env.credentials.secret_key not in repr(store)


def test_nothing_outside_the_prefix_is_listed(store: S3Store) -> None:
    keys = {e.key for e in store.list("", recursive=True)}
    assert keys == set(CONTRACT_FILES)
    with pytest.raises(NotFound):
        store.stat("outside.wav")  # pbx1/outside.wav: not the bucket's outside.wav


def test_listed_times_come_from_the_listing(store: S3Store) -> None:
    now = datetime.now(UTC)
    for entry in store.list("2026/03/09"):
        assert entry.mtime.tzinfo is UTC
        assert abs(entry.mtime - now) < timedelta(hours=1)
        assert entry.mtime.replace(microsecond=0) == store.stat(entry.key).mtime.replace(
            microsecond=0
        )


def test_stat_carries_the_objects_etag(store: S3Store) -> None:
    entry = store.stat(BIG_KEY)
    assert entry.etag == f'"{hashlib.md5(BIG).hexdigest()}"'  # noqa: S324 - S3's single-part ETag
    assert entry.size == len(BIG)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, len(BIG)),
        (17, 18),
        (CHUNK_SIZE - 1, CHUNK_SIZE + 1),
        (len(BIG) - 10, len(BIG) + 1000),  # past the end: cut at the end
        (len(BIG), None),  # starts at the end: nothing
        (len(BIG) + 5, len(BIG) + 10),
    ],
)
def test_byte_ranges(store: S3Store, start: int, end: int | None) -> None:
    assert b"".join(store.open(BIG_KEY, start, end)) == BIG[start:end]


def test_empty_object(store: S3Store) -> None:
    assert b"".join(store.open("2026/03/09/empty.wav")) == b""
    assert b"".join(store.open("2026/03/09/empty.wav", 0, 10)) == b""


def test_closing_a_download_early_releases_it(store: S3Store) -> None:
    chunks = store.open(BIG_KEY)
    first = next(chunks)
    assert first == BIG[: len(first)]
    chunks.close()
    with pytest.raises(StopIteration):
        next(chunks)
    assert b"".join(store.open(BIG_KEY, 0, 100)) == BIG[:100]  # the pool still works


@pytest.mark.parametrize("key", ["../outside.wav", "a//b.wav", "/pbx1/top.wav", "a\\b.wav"])
def test_presigning_and_listing_refuse_unsafe_keys(store: S3Store, key: str) -> None:
    with pytest.raises(Forbidden):
        store.presigned_url(key, 60)
    with pytest.raises(Forbidden):
        store.list(key)


def test_unsafe_object_keys_in_the_bucket_are_never_offered(
    s3env: S3Env, make_bucket: BucketFactory
) -> None:
    bucket = make_bucket({"p/ok.wav": b"ok", "p/a//double.wav": b"x", "p/ctl\x01.wav": b"x"})
    store = s3env.store(bucket, "p")
    try:
        keys = {e.key for e in store.list("", recursive=True)}
        # Some servers store "a//double.wav" as "a/double.wav" (SeaweedFS keeps real folders);
        # either way no key that fails the shared key rules is offered.
        assert "ok.wav" in keys
        assert keys <= {"ok.wav", "a/double.wav"}
        for key in keys:
            check_key(key)
    finally:
        store.close()


def test_pagination_over_more_than_1000_keys_in_one_folder(
    s3env: S3Env, make_bucket: BucketFactory
) -> None:
    day = "2026/03/09"
    names = [f"in-1-2-20260309-120000-17730000{n:02d}.{n}.wav" for n in range(1100)]
    bucket = make_bucket({f"{day}/{name}": name.encode() for name in names})
    store = s3env.store(bucket)
    try:
        listed = list(store.list(day))
        assert len(listed) == 1100
        assert {e.name for e in listed} == set(names)
        assert all(e.size == len(e.name) for e in listed)
        assert len(list(store.list("", recursive=True))) == 1100
        last = store.list(day, match=lambda name: name == names[-1])
        assert [e.name for e in last] == [names[-1]]
    finally:
        store.close()


def test_many_folders_are_paginated_too(s3env: S3Env, make_bucket: BucketFactory) -> None:
    bucket = make_bucket({f"t{n:04d}/x.wav": b"x" for n in range(1050)})
    store = s3env.store(bucket)
    try:
        folders = [e for e in store.list("") if e.is_dir]
        assert len(folders) == 1050
    finally:
        store.close()


def test_the_factory_does_not_touch_the_network() -> None:
    started = time.monotonic()
    store = S3Store.from_url(
        SourceURL.parse("s3://nowhere/x?endpoint=http://127.0.0.1:9&region=r1")
    )
    assert time.monotonic() - started < 1
    assert store.description == "s3://nowhere/x (endpoint http://127.0.0.1:9)"


def test_wrong_credentials_are_unavailable_naming_the_source(
    s3env: S3Env, contract_bucket: str
) -> None:
    wrong_secret = "wrong-" + s3env.credentials.secret_key[::-1]
    store = s3env.store(contract_bucket, PREFIX, secret=wrong_secret)
    try:
        for action in (
            store.check,
            lambda: list(store.list("2026/03/09")),
            lambda: store.stat(BIG_KEY),
            lambda: store.open(BIG_KEY),
        ):
            with pytest.raises(Unavailable) as info:
                action()
            message = str(info.value)
            assert store.description in message
            assert wrong_secret not in message
            assert s3env.credentials.secret_key not in message
    finally:
        store.close()


def test_missing_bucket_is_a_config_error_naming_it(s3env: S3Env) -> None:
    store = s3env.store("gw-test-no-such-bucket", "pbx1")
    try:
        with pytest.raises(ConfigError, match="gw-test-no-such-bucket"):
            store.check()
    finally:
        store.close()


def test_presigned_url_serves_ranges_to_a_real_http_client(store: S3Store) -> None:
    url = store.presigned_url(BIG_KEY, 300)
    assert "X-Amz-Signature=" in url
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200
    assert whole.content == BIG
    part = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert part.status_code == 206
    assert part.content == BIG[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(BIG)}"
    probe = requests.get(url, headers={"Range": "bytes=0-1"}, timeout=30)  # Safari's first ask
    assert (probe.status_code, probe.content) == (206, BIG[:2])


def test_presigned_url_signature_is_checked(store: S3Store) -> None:
    url = store.presigned_url(BIG_KEY, 300)
    other = store.presigned_url("top.wav", 300)
    signature = url.split("X-Amz-Signature=")[1].split("&")[0]
    forged = other.replace(other.split("X-Amz-Signature=")[1].split("&")[0], signature)
    assert requests.get(forged, timeout=30).status_code == 403


def test_presigned_url_expires(store: S3Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The S3 server's clock cannot be moved: the URL is signed on botocore's clock set back
    instead, so that it reaches the server already expired (no sleeping)."""
    import botocore.auth

    fresh = store.presigned_url("top.wav", 60)
    now = botocore.auth.get_current_datetime
    ago = timedelta(seconds=60 + 60)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: now(*a, **k) - ago)
    stale = store.presigned_url("top.wav", 60)
    assert requests.get(fresh, timeout=30).status_code == 200
    answer = requests.get(stale, timeout=30)
    assert answer.status_code == 403
    assert "expired" in answer.text


def test_presign_endpoint_is_written_into_urls(s3env: S3Env, contract_bucket: str) -> None:
    public = "https://recordings.example.com"
    store = s3env.store(contract_bucket, PREFIX, presign_endpoint=public)
    try:
        assert store.presigned_url("top.wav", 60).startswith(f"{public}/{contract_bucket}/pbx1/")
    finally:
        store.close()


def test_clients_are_built_once_under_concurrency(s3env: S3Env, contract_bucket: str) -> None:
    store = s3env.store(contract_bucket, PREFIX)
    clients: set[int] = set()
    errors: list[BaseException] = []
    barrier = threading.Barrier(12)

    def work() -> None:
        try:
            barrier.wait()
            clients.add(id(store._get_client()))
            assert b"".join(store.open(BIG_KEY, 0, 4096)) == BIG[:4096]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    store.close()
    assert errors == []
    assert len(clients) == 1


def test_credentials_from_the_environment_and_a_profile(
    s3env: S3Env, contract_bucket: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = s3env.environ()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3env.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3env.region)
    from_env = S3Store.from_url(SourceURL.parse(f"s3://{contract_bucket}/{PREFIX}"))
    assert from_env.description.endswith(f"(endpoint {s3env.endpoint})")
    assert from_env.stat("top.wav").size == len(CONTRACT_FILES["top.wav"])
    from_env.close()

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name)
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[recordings]\naws_access_key_id = {s3env.credentials.access_key}\n"
        f"aws_secret_access_key = {s3env.credentials.secret_key}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    url = f"s3://{contract_bucket}/{PREFIX}"
    options = {"s3_profile": "recordings", "s3_endpoint": s3env.endpoint, "s3_path_style": "1"}
    from_profile = S3Store.from_url(SourceURL.parse(url, options))
    assert from_profile.stat("top.wav").size == len(CONTRACT_FILES["top.wav"])
    from_profile.close()

    missing = S3Store.from_url(SourceURL.parse(url, {**options, "s3_profile": "nope"}))
    with pytest.raises(ConfigError, match="profile"):
        missing.check()


def test_importing_the_plugin_does_not_import_boto3() -> None:
    code = (
        "import sys, gateway_s3\n"
        "from gateway.plugins import load_plugins\n"
        "from gateway.sourceurl import SourceURL\n"
        "p = load_plugins()\n"
        "s = p.store_type('s3').factory(SourceURL.parse('s3://bkt/p?endpoint=http://127.0.0.1:9'))\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_without_boto3_the_error_says_what_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['boto3'] = None\n"
        "from gateway.errors import ConfigError\n"
        "from gateway.sourceurl import SourceURL\n"
        "from gateway_s3.store import S3Store\n"
        "s = S3Store.from_url(SourceURL.parse('s3://bkt/p?endpoint=http://127.0.0.1:9'))\n"
        "try:\n"
        "    s.check()\n"
        "except ConfigError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, timeout=60, capture_output=True, text=True
    )
    assert "pip install 'recording-gateway[s3]'" in out.stdout


def _sockets() -> int:
    """Sockets this process holds open."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed while listing
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def test_closing_an_unread_stream_closes_its_response(store: S3Store) -> None:
    store.stat(BIG_KEY)  # the client exists, with a pooled connection
    before = _sockets()
    streams = [store.open(BIG_KEY, 0, len(BIG) // 2) for _ in range(12)]
    assert _sockets() >= before + 11  # each open response holds a connection
    next(streams[0])
    for stream in streams:
        stream.close()
        stream.close()  # a second close does nothing
    assert _sockets() <= before + 1
    assert b"".join(store.open(BIG_KEY)) == BIG  # the client goes on working
