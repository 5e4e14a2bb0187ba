"""The traversal corpus over HTTP against a real ``gateway serve`` of a local archive.

Next to the archive (outside its root) lies a canary file; inside, symlinks lead to it. Every
hostile value goes into the search fields (call id, tenant, timestamp) and into the link
(forged signed parts, hostile names, and links *correctly signed* with the gateway's own key
but naming hostile keys, which is what a leaked key would allow): each answer must be a 4xx
JSON error or an honest search answer, never a 5xx, never the canary's bytes.
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from gateway.signing import LinkSigner
from gateway.testing import CANARY, TRAVERSAL_CORPUS
from tests.web.conftest import TOKEN, Archive, Gateway, make_archive, serve_args

pytestmark = pytest.mark.timeout(240)

LINK_KEY = "proof-link-key-" + "x" * 40
LINKED_CALL = "1773000000.999"


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    base = tmp_path_factory.mktemp("traversal")
    archive = make_archive(base / "root")
    (base / "outside.wav").write_bytes(CANARY)
    (base / "outside").mkdir()
    (base / "outside" / "outside.wav").write_bytes(CANARY)
    day = archive.root / "2026" / "03" / "09"
    os.symlink(base / "outside.wav", day / f"in-1-2-20260309-100000-{LINKED_CALL}.wav")
    os.symlink(base / "outside", archive.root / "2026" / "03" / "08" / "linked")
    return archive


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, archive: Archive) -> Iterator[Gateway]:
    keyfile = tmp_path_factory.mktemp("keys") / "link.keys"
    keyfile.write_text(LINK_KEY + "\n")
    log = tmp_path_factory.mktemp("log") / "gateway.log"
    gateway = Gateway(serve_args(archive, "--link-key-file", str(keyfile)), log)
    yield gateway
    gateway.stop()
    assert "Traceback" not in gateway.log()


def request(
    gw: Gateway, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, bytes]:
    """Send ``path`` exactly as given (no client-side normalisation)."""
    host, port = gw.url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def assert_clean(status: int, body: bytes, what: str) -> None:
    assert status < 500, f"{what}: {status} {body[:200]!r}"
    assert CANARY not in body, f"{what}: the canary was served"
    assert b"Traceback" not in body, what
    assert TOKEN.encode() not in body, what


def search(gw: Gateway, **fields: str) -> tuple[int, dict[str, object]]:
    form = "&".join(f"{k}={quote(v, safe='')}" for k, v in {"token": TOKEN, **fields}.items())
    status, body = request(
        gw,
        "POST",
        "/search/",
        form.encode(),
        **{"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_clean(status, body, f"search {fields!r}")
    answer = json.loads(body)
    assert answer["status"] == ("OK" if status == 200 else "ERROR"), answer
    return status, answer


@pytest.mark.parametrize("field", ["callid", "tenant", "timestamp", "queue", "agent", "server"])
def test_search_fields(gw: Gateway, archive: Archive, field: str) -> None:
    call = archive.calls[0]
    statuses = set()
    for value in TRAVERSAL_CORPUS:
        fields = {"callid": call.callid, field: value}
        status, answer = search(gw, **fields)
        statuses.add(status)
        assert status in (200, 400), (value, status, answer)
        if status == 200 and field == "callid":
            assert answer["files"] == [], (value, answer)
    if field in ("callid", "tenant", "timestamp"):
        assert 400 in statuses  # the checks refuse what they must


def test_a_symlink_out_of_the_root_is_never_found(gw: Gateway) -> None:
    status, answer = search(gw, callid=LINKED_CALL)
    assert (status, answer["files"]) == (200, [])
    status, answer = search(gw, callid=LINKED_CALL, timestamp="2026-03-09T10:00:00")
    assert (status, answer["files"]) == (200, [])


def test_forged_links(gw: Gateway) -> None:
    for value in TRAVERSAL_CORPUS:
        for signed, name in (
            (quote(value, safe=""), "x.wav"),
            (quote(value, safe="/"), "x.wav"),
            ("a" * 40 + "." + "b" * 27, quote(value, safe="")),
        ):
            for method in ("GET", "HEAD"):
                path = f"/files/{signed}/{name}"
                status, body = request(gw, method, path)
                assert_clean(status, body, f"{method} {path}")
                assert 400 <= status < 500, (path, status)
                if method == "GET":
                    assert json.loads(body)["status"] == "ERROR"


def test_hostile_names_on_a_real_link_serve_the_linked_file(gw: Gateway, archive: Archive) -> None:
    [link, *_] = gw.links(archive.call_with(1))
    signed = link["url"].split("/files/", 1)[1].split("/", 1)[0]
    expected = (archive.root / archive.call_with(1).files[0]).read_bytes()
    for value in TRAVERSAL_CORPUS:
        status, body = request(gw, "GET", f"/files/{signed}/{quote(value, safe='')}")
        assert_clean(status, body, value)
        if "/" in value:  # the server decodes %2F: no route has that many segments
            assert status == 404, value
        else:
            assert (status, body) == (200, expected), value


def test_correctly_signed_links_to_hostile_keys(gw: Gateway, archive: Archive) -> None:
    """With the link key, a forger names any key: the store must still refuse it."""
    signer = LinkSigner([LINK_KEY])
    [link, *_] = gw.links(archive.call_with(1))
    source = signer.verify(link["url"].split("/files/", 1)[1].split("/", 1)[0]).source
    keys = [*TRAVERSAL_CORPUS, "2026/03/08/linked/outside.wav", "2026/03/08/linked"]
    keys.append(f"2026/03/09/in-1-2-20260309-100000-{LINKED_CALL}.wav")
    statuses = set()
    for key in keys:
        for src in (source, "file:/", "file:" + str(Path(archive.root).parent)):
            signed, _ = signer.sign(src, key, 60)
            for headers in ({}, {"Range": "bytes=0-"}):
                status, body = request(gw, "GET", f"/files/{signed}/x.wav", **headers)
                assert_clean(status, body, f"{src} {key!r}")
                assert status in (403, 404), (src, key, status, body[:200])
                statuses.add(status)
    assert statuses == {403, 404}
