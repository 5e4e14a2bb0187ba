"""GET/HEAD /files/<signed>/<name> over real HTTP: bytes, ranges, validators, bad links."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.signing import LEEWAY_SECONDS, LinkSigner
from tests.web.conftest import TOKEN, Archive, Gateway, make_archive


@pytest.fixture(scope="module")
def link(gw: Gateway, archive: Archive) -> dict[str, Any]:
    return gw.links(archive.call_with(1))[0]


@pytest.fixture(scope="module")
def content(archive: Archive) -> bytes:
    return (archive.root / archive.call_with(1).files[0]).read_bytes()


def test_download_gives_the_exact_bytes(link: dict[str, Any], content: bytes) -> None:
    answer = requests.get(link["url"], timeout=10)
    assert answer.status_code == 200
    assert answer.content == content
    h = answer.headers
    assert h["Content-Length"] == str(len(content))
    assert h["Content-Type"] == "audio/wav"
    assert h["Accept-Ranges"] == "bytes"
    assert h["Referrer-Policy"] == "no-referrer"
    shown = link["url"].rsplit("/", 1)[1]  # the neutral name the link shows
    assert h["Content-Disposition"].startswith(f'inline; filename="{shown}"')
    assert "filename*=UTF-8''" in h["Content-Disposition"]
    assert h["ETag"].startswith('"')
    assert h["Last-Modified"].endswith("GMT")
    private, max_age = h["Cache-Control"].split(", ")
    assert private == "private"
    assert 0 < int(max_age.removeprefix("max-age=")) <= 300


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-1", 0, 1),  # what Safari asks first
        ("bytes=100-199", 100, 199),
        ("bytes=1000-", 1000, None),
        ("bytes=-500", -500, None),
        ("bytes=0-", 0, None),
        ("bytes=5000-99999999", 5000, None),
    ],
)
def test_each_range_form(
    link: dict[str, Any], content: bytes, header: str, start: int, end: int | None
) -> None:
    answer = requests.get(link["url"], headers={"Range": header}, timeout=10)
    assert answer.status_code == 206
    size = len(content)
    want = content[start : None if end is None else end + 1]
    assert answer.content == want
    first = start if start >= 0 else size + start
    assert answer.headers["Content-Range"] == f"bytes {first}-{first + len(want) - 1}/{size}"
    assert answer.headers["Content-Length"] == str(len(want))


@pytest.mark.parametrize("header", ["bytes=99999999-", "bytes=96044-"])
def test_range_outside_the_file_is_416(link: dict[str, Any], content: bytes, header: str) -> None:
    if header == "bytes=96044-":
        header = f"bytes={len(content)}-"
    answer = requests.get(link["url"], headers={"Range": header}, timeout=10)
    assert answer.status_code == 416
    assert answer.headers["Content-Range"] == f"bytes */{len(content)}"
    assert answer.json()["status"] == "ERROR"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=abc", "bytes=9-2"])
def test_unusable_range_headers_are_ignored(
    link: dict[str, Any], content: bytes, header: str
) -> None:
    answer = requests.get(link["url"], headers={"Range": header}, timeout=10)
    assert answer.status_code == 200
    assert answer.content == content


def test_head(link: dict[str, Any], content: bytes) -> None:
    answer = requests.head(link["url"], timeout=10)
    assert answer.status_code == 200
    assert answer.content == b""
    assert answer.headers["Content-Length"] == str(len(content))
    ranged = requests.head(link["url"], headers={"Range": "bytes=10-19"}, timeout=10)
    assert ranged.status_code == 206
    assert ranged.headers["Content-Length"] == "10"
    assert ranged.headers["Content-Range"] == f"bytes 10-19/{len(content)}"


def test_conditional_requests(link: dict[str, Any], content: bytes) -> None:
    first = requests.get(link["url"], timeout=10)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]

    same = requests.get(link["url"], headers={"If-None-Match": etag}, timeout=10)
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["ETag"] == etag
    assert (
        requests.get(
            link["url"], headers={"If-None-Match": f'"x", W/{etag}'}, timeout=10
        ).status_code
        == 304
    )
    assert (
        requests.get(link["url"], headers={"If-None-Match": '"other"'}, timeout=10).status_code
        == 200
    )

    assert (
        requests.get(link["url"], headers={"If-Modified-Since": modified}, timeout=10).status_code
        == 304
    )
    old = format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True)
    assert (
        requests.get(link["url"], headers={"If-Modified-Since": old}, timeout=10).status_code == 200
    )
    # If-None-Match wins over If-Modified-Since
    both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
    assert requests.get(link["url"], headers=both, timeout=10).status_code == 200

    for validator in (etag, modified):
        hit = requests.get(
            link["url"], headers={"Range": "bytes=0-9", "If-Range": validator}, timeout=10
        )
        assert hit.status_code == 206
        assert hit.content == content[:10]
    for stale in ('"other"', old, f"W/{etag}"):
        miss = requests.get(
            link["url"], headers={"Range": "bytes=0-9", "If-Range": stale}, timeout=10
        )
        assert miss.status_code == 200
        assert miss.content == content


def _swap_char(text: str, index: int) -> str:
    return text[:index] + ("A" if text[index] != "A" else "B") + text[index + 1 :]


def test_tampered_links_are_403(link: dict[str, Any]) -> None:
    base, signed, name = link["url"].rsplit("/", 2)
    for bad in (
        _swap_char(signed, len(signed) - 3),  # the signature
        _swap_char(signed, 5),  # the payload
        signed.rsplit(".", 1)[0],  # no signature
        "garbage",
        signed + "x",
    ):
        answer = requests.get(f"{base}/{bad}/{name}", timeout=10)
        assert answer.status_code == 403, bad
        assert answer.json()["status"] == "ERROR"


def test_the_name_segment_is_cosmetic(link: dict[str, Any], content: bytes) -> None:
    base, signed, _ = link["url"].rsplit("/", 2)
    for name in ("x.wav", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "..", "passwd"):
        answer = requests.get(f"{base}/{signed}/{name}", timeout=10)
        if answer.status_code == 404:  # the router refuses names it cannot route
            assert answer.json()["status"] == "ERROR"
            continue
        assert answer.status_code == 200, name
        assert answer.content == content


@pytest.mark.parametrize(
    "path",
    [
        "/files/../../etc/passwd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/..%2f..%2fetc%2fpasswd/x",
        "/files/%00/x",
        "/files//etc/passwd",
    ],
)
def test_traversal_in_the_link_is_refused(gw: Gateway, path: str) -> None:
    answer = requests.get(gw.url + path, timeout=10)
    assert answer.status_code in (400, 403, 404)
    assert answer.json()["status"] == "ERROR"
    assert "root:" not in answer.text


def test_vanished_file_is_404(start_gateway: Any, tmp_path: Path) -> None:
    archive = make_archive(tmp_path / "a")
    gw = start_gateway(root=archive)
    call = archive.call_with(1)
    (found,) = gw.links(call)
    (archive.root / call.files[0]).unlink()
    answer = requests.get(found["url"], timeout=10)
    assert answer.status_code == 404
    assert answer.json()["status"] == "ERROR"
    # the holder of a link learns nothing of the storage: no key, no stored name (which
    # holds the caller's number), no path
    assert found["name"] not in answer.text
    assert call.files[0].rsplit("/", 1)[0] not in answer.text
    assert str(archive.root) not in answer.text


def test_file_swapped_for_a_link_out_of_the_root_is_refused_in_neutral_words(
    start_gateway: Any, tmp_path: Path
) -> None:
    archive = make_archive(tmp_path / "a")
    secret = tmp_path / "outside.wav"
    secret.write_bytes(b"RIFF-not-a-recording-of-this-archive")
    gw = start_gateway(root=archive)
    call = archive.call_with(1)
    (found,) = gw.links(call)
    path = archive.root / call.files[0]
    path.unlink()
    path.symlink_to(secret)
    answer = requests.get(found["url"], timeout=10)
    assert answer.status_code == 403
    assert b"RIFF-not-a-recording" not in answer.content
    assert found["name"] not in answer.text
    assert str(tmp_path) not in answer.text


def test_expired_link_is_410(start_gateway: Any, archive: Archive, tmp_path: Path) -> None:
    """A real ``gateway serve`` answers an expired link with a JSON 410. Its clock cannot be
    moved, so the link is signed again with its key (``--link-key-file``) on a clock set back;
    the expiry arithmetic (TTL, leeway) is tested on fake clocks in test_signing.py and
    test_app_inprocess.py."""
    keys = tmp_path / "keys"
    keys.write_text(f"{KEY_A}\n")
    gw = start_gateway("--link-key-file", str(keys), "--link-ttl", "60")
    (found,) = gw.links(archive.call_with(1))
    assert requests.get(found["url"], timeout=10).status_code == 200  # fresh: fine
    signed = found["url"].split("/files/", 1)[1].split("/", 1)[0]
    target = LinkSigner([KEY_A]).verify(signed)
    # --link-ttl plus the call's duration (gateway.links.lifetime)
    assert 50 < target.expires - time.time() - math.ceil(found["duration"]) <= 60

    def signed_ago(seconds: float) -> str:
        signer = LinkSigner([KEY_A], clock=lambda: time.time() - seconds)
        token, _ = signer.sign(target.source, target.key, 60, name=target.name)
        return str(found["url"]).replace(signed, token)

    assert requests.get(signed_ago(0), timeout=10).status_code == 200  # the same link
    answer = requests.get(signed_ago(60 + LEEWAY_SECONDS + 30), timeout=10)
    assert answer.status_code == 410
    assert answer.json()["status"] == "ERROR"


def test_link_from_a_previous_run_is_403(start_gateway: Any, archive: Archive) -> None:
    first = start_gateway()
    (found,) = first.links(archive.call_with(1))
    port = first.url.rsplit(":", 1)[1]
    assert first.stop() == 0
    second = start_gateway(token=TOKEN)
    url = found["url"].replace(f":{port}/", f":{second.url.rsplit(':', 1)[1]}/")
    answer = requests.get(url, timeout=10)
    assert answer.status_code == 403


KEY_A = "a" * 20 + "-first-key-0123456789"
KEY_B = "b" * 20 + "-second-key-0123456789"


def test_key_file_rotation(start_gateway: Any, archive: Archive, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"# link keys\n\n{KEY_A}\n")
    old = start_gateway("--link-key-file", str(keys))
    (found,) = old.links(archive.call_with(1))
    signed = found["url"].split("/files/", 1)[1]
    old.stop()

    keys.write_text(f"{KEY_B}\n# the old key still verifies\n{KEY_A}\n")
    new = start_gateway("--link-key-file", str(keys))
    assert requests.get(f"{new.url}/files/{signed}", timeout=10).status_code == 200
    (fresh,) = new.links(archive.call_with(1))
    assert fresh["url"].split("/files/", 1)[1] != signed
    new.stop()

    keys.write_text(f"{KEY_B}\n")
    only_new = start_gateway("--link-key-file", str(keys))
    assert requests.get(f"{only_new.url}/files/{signed}", timeout=10).status_code == 403
    newer = fresh["url"].split("/files/", 1)[1]
    assert requests.get(f"{only_new.url}/files/{newer}", timeout=10).status_code == 200


def test_no_secret_in_logs_or_pages(start_gateway: Any, archive: Archive) -> None:
    gw = start_gateway()
    call = archive.call_with(2)
    files = gw.links(call)
    requests.get(f"{gw.url}/search/?token={TOKEN}&callid={call.callid}", timeout=10)
    requests.post(f"{gw.url}/search/", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    for f in files:
        requests.get(f["url"], headers={"Range": "bytes=0-99"}, timeout=10)
    page = requests.get(f"{gw.url}/", timeout=10)
    assert page.status_code == 200
    assert "Recording gateway is up" in page.text
    assert "0.1" in page.text
    health = requests.get(f"{gw.url}/healthz", timeout=10)
    assert health.json()["status"] == "OK"
    assert gw.stop() == 0
    log = gw.log()
    signed_parts = [f["url"].split("/")[-2] for f in files]
    for text in (log, page.text, health.text, gw.banner, gw.tail):
        assert TOKEN not in text
        for signed in signed_parts:
            assert signed not in text
            assert signed[:20] not in text
    assert str(archive.root) not in page.text
    assert "/files/<redacted>/" in log
    lines = [line for line in log.splitlines() if " GET /files/" in line]
    assert len(lines) == len(files)
    assert all(" 206 100 " in line for line in lines)
