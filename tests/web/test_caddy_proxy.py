"""Real Caddy in front (tls internal): links carry the public HTTPS URL, downloads seek."""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from tests.web.conftest import TOKEN, Archive, Caddy, Gateway, caddy_missing, upstream_of

pytestmark = pytest.mark.skipif(caddy_missing() is not None, reason=str(caddy_missing()))


@pytest.fixture
def caddy(tmp_path: Path, start_gateway: Any) -> Iterator[tuple[str, Path, Gateway]]:
    gw = start_gateway()  # no --public-url: the links come from the proxy's headers
    proxy = Caddy(tmp_path, upstream_of(gw))
    yield proxy.url, proxy.root_cert, gw
    proxy.stop()


def test_links_through_caddy_are_https_and_seek(
    caddy: tuple[str, Path, Gateway], archive: Archive
) -> None:
    url, root_cert, gw = caddy
    call = archive.call_with(1)
    content = (archive.root / call.files[0]).read_bytes()
    answer = requests.post(
        f"{url}/search/",
        data={"searchtoken": TOKEN, "callid": call.callid, "timestamp": call.start},
        verify=root_cert,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    (f,) = answer.json()["files"]
    assert f["url"].startswith(f"{url}/files/")
    middle = len(content) // 2
    part = requests.get(
        f["url"], headers={"Range": f"bytes={middle}-{middle + 999}"}, verify=root_cert, timeout=10
    )
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes {middle}-{middle + 999}/{len(content)}"
    assert part.content == content[middle : middle + 1000]
    assert part.headers["Strict-Transport-Security"].startswith("max-age=")  # the deployed file
    assert requests.get(f["url"], verify=root_cert, timeout=10).content == content
    # the gateway itself, asked directly, still answers with its own address
    direct = gw.links(call)[0]["url"]
    assert direct.startswith(f"{gw.url}/files/")


def _post_from(client: str, url: str, fields: dict[str, str], headers: dict[str, str]) -> int:
    """POST /search/ from the loopback address ``client`` (127.0.0.0/8 is all this host's)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(
        parts.hostname or "", parts.port, timeout=10, source_address=(client, 0)
    )
    try:
        body = urlencode(fields)
        form = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        connection.request("POST", "/search/", body=body, headers=form)
        return connection.getresponse().status
    finally:
        connection.close()


def test_behind_caddy_guessing_is_throttled_by_the_real_client_address(
    tmp_path: Path, start_gateway: Any, archive: Archive
) -> None:
    gw = start_gateway()  # trusts X-Forwarded-For from 127.0.0.1, where Caddy connects from
    proxy = Caddy(tmp_path, upstream_of(gw), tls=False)
    try:
        call = archive.call_with(1)
        search = {"callid": call.callid, "timestamp": call.start}
        guesser, other = "127.0.0.2", "127.0.0.3"
        for n in range(10):  # each claiming another address: Caddy does not believe it
            spoofed = {"X-Forwarded-For": f"198.51.100.{n}"}
            status = _post_from(guesser, proxy.url, {"token": f"guess-{n}", **search}, spoofed)
            assert status == 401
        claim_other = {"X-Forwarded-For": other}
        assert _post_from(guesser, proxy.url, {"token": TOKEN, **search}, claim_other) == 429
        assert _post_from(other, proxy.url, {"token": TOKEN, **search}, {}) == 200
    finally:
        proxy.stop()
