"""`gateway serve --s3-redirect`: a link answers 302 to a presigned S3 URL, and a real HTTP
client that follows it gets the right bytes, ranges included, from the real S3 server."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.s3.conftest import BucketFactory, S3Env
from tests.web.conftest import Gateway

TOKEN = "tok-s3-redirect-tests"
CALL = "1773047410.5"
KEY = f"pbx/2026/03/09/in-100-200-20260309-101010-{CALL}.wav"
AUDIO = b"RIFF" + secrets.token_bytes(200_000)


@pytest.fixture(scope="module")
def bucket(make_bucket: BucketFactory) -> str:
    return make_bucket({KEY: AUDIO})


def serve(s3env: S3Env, bucket: str, tmp_path: Path, *extra: str) -> Gateway:
    args = ["--path", s3env.url(bucket, "pbx"), "--layout", "freepbx", "--timezone", "UTC",
            "--bind-to", "127.0.0.1:0", "--token", TOKEN, *extra]  # fmt: skip
    return Gateway(args, tmp_path / "gateway.log", s3env.environ())


@pytest.fixture
def redirecting(s3env: S3Env, bucket: str, tmp_path: Path) -> Iterator[Gateway]:
    gw = serve(s3env, bucket, tmp_path, "--s3-redirect")
    yield gw
    gw.stop()


def link(gw: Gateway) -> str:
    answer = requests.post(f"{gw.url}/search/", data={"token": TOKEN, "callid": CALL},
                           timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    [found] = answer.json()["files"]
    return str(found["url"])


def test_link_redirects_to_a_presigned_url_of_the_store(redirecting: Gateway, s3env: S3Env) -> None:
    url = link(redirecting)
    answer = requests.get(url, allow_redirects=False, timeout=30)
    assert answer.status_code == 302
    target = answer.headers["Location"]
    assert urlsplit(target).netloc == urlsplit(s3env.endpoint).netloc
    assert "Signature" in target or "X-Amz-Signature" in target
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert TOKEN not in target


def test_following_the_redirect_serves_ranges_and_whole_file(redirecting: Gateway) -> None:
    url = link(redirecting)
    whole = requests.get(url, timeout=30)
    assert whole.status_code == 200
    assert whole.content == AUDIO
    part = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert part.status_code == 206
    assert part.content == AUDIO[1000:2000]


def test_a_tampered_presigned_url_is_refused_by_the_store(redirecting: Gateway) -> None:
    target = requests.get(link(redirecting), allow_redirects=False, timeout=30).headers["Location"]
    forged = target.replace("pbx/2026", "pbx/2025")
    assert requests.get(forged, timeout=30).status_code == 403


def test_without_the_flag_the_gateway_streams(s3env: S3Env, bucket: str, tmp_path: Path) -> None:
    gw = serve(s3env, bucket, tmp_path)
    try:
        url = link(gw)
        answer = requests.get(url, allow_redirects=False, timeout=30)
        assert answer.status_code == 200
        assert answer.content == AUDIO
        # the object's own ETag and Last-Modified are passed through, and work as validators
        etag = answer.headers["ETag"]
        assert etag == f'"{hashlib.md5(AUDIO).hexdigest()}"'  # noqa: S324 - S3's ETag
        assert requests.get(url, headers={"If-None-Match": etag}, timeout=30).status_code == 304
        ranged = requests.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}, timeout=30)
        assert ranged.status_code == 206
    finally:
        gw.stop()
