"""Edge cases through falcon's test client and an in-process waitress: streaming from a
store that is not local (generator path), public URL choices, error shapes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
import requests
import waitress

from gateway.errors import Unavailable
from gateway.links import lifetime
from gateway.placeholders import PathPattern
from gateway.query import parse_timezone
from gateway.search import SearchSettings
from gateway.secret_files import Secret
from gateway.signing import LEEWAY_SECONDS, LinkSigner
from gateway.sources import StoreSource
from gateway.storage import Entry, LocalFile
from gateway.web.accesslog import AccessLog, redact
from gateway.web.app import create_app
from gateway.web.config import WebConfig
from gateway_local import LocalStore
from tests.conftest import FakeClock
from tests.web.conftest import TOKEN, TZ, Archive


class StreamOnlyStore:
    """A real store over a local folder that offers no ``open_local`` (like SMB or S3), so
    the web service must stream its generator. Counts how much it was asked to read."""

    def __init__(self, root: Path) -> None:
        self._inner = LocalStore(root)
        self.description = "stream:" + str(root)
        self.opened: list[tuple[int, int | None]] = []

    def check(self) -> None:
        self._inner.check()

    def list(self, prefix: str, **kw: Any) -> Iterator[Entry]:
        return self._inner.list(prefix, **kw)

    def stat(self, key: str) -> Entry:
        return self._inner.stat(key)

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        self.opened.append((start, end))
        return self._inner.open(key, start, end)

    def close(self) -> None:
        pass


def make_config(store: Any, public_url: str | None = None) -> WebConfig:
    source = StoreSource(store.description, store, PathPattern("%YY/%MM/%DD"))
    return WebConfig(
        sources=[source],
        settings=SearchSettings(timezone=parse_timezone(TZ)),
        token=Secret(TOKEN),
        signer=LinkSigner.random(),
        public_url=public_url,
    )


@pytest.fixture
def streaming_server(archive: Archive) -> Iterator[tuple[str, StreamOnlyStore]]:
    store = StreamOnlyStore(archive.root)
    assert not isinstance(store, LocalFile)
    server = waitress.create_server(
        AccessLog(create_app(make_config(store))), host="127.0.0.1", port=0, threads=4
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}", store
    server.close()
    thread.join(5)


def test_generator_stream_with_ranges(
    streaming_server: tuple[str, StreamOnlyStore], archive: Archive
) -> None:
    url, store = streaming_server
    call = archive.call_with(1)
    content = (archive.root / call.files[0]).read_bytes()
    answer = requests.post(
        f"{url}/search/",
        data={"token": TOKEN, "callid": call.callid, "timestamp": call.start},
        timeout=10,
    )
    (f,) = answer.json()["files"]
    assert requests.get(f["url"], timeout=10).content == content
    part = requests.get(f["url"], headers={"Range": "bytes=1000-2999"}, timeout=10)
    assert part.status_code == 206
    assert part.content == content[1000:3000]
    tail = requests.get(f["url"], headers={"Range": "bytes=-10"}, timeout=10)
    assert tail.content == content[-10:]
    assert requests.head(f["url"], timeout=10).headers["Content-Length"] == str(len(content))
    # the search read the WAV header once for the duration (gateway.audioinfo), then the ranges
    assert store.opened == [
        (0, 4096),
        (0, len(content)),
        (1000, 3000),
        (len(content) - 10, len(content)),
    ]


def test_falcon_client_without_file_wrapper_sends_exact_ranges(archive: Archive) -> None:
    client = falcon.testing.TestClient(create_app(make_config(LocalStore(archive.root))))
    call = archive.call_with(1)
    content = (archive.root / call.files[0]).read_bytes()
    answer = client.simulate_post(
        "/search/", params={"token": TOKEN, "callid": call.callid, "timestamp": call.start}
    )
    path = "/files/" + answer.json["files"][0]["url"].split("/files/", 1)[1]
    part = client.simulate_get(path, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.content == content[10:20]


def test_public_url_and_forwarded_headers(archive: Archive) -> None:
    call = archive.call_with(1)
    params = {"token": TOKEN, "callid": call.callid, "timestamp": call.start}
    fixed = falcon.testing.TestClient(
        create_app(make_config(LocalStore(archive.root), "https://av.example.com/vault/"))
    )
    url = fixed.simulate_get("/search/", params=params).json["files"][0]["url"]
    assert url.startswith("https://av.example.com/vault/files/")
    plain = falcon.testing.TestClient(create_app(make_config(LocalStore(archive.root))))
    url = plain.simulate_get("/search/", params=params, host="gw.example:8080").json
    assert url["files"][0]["url"].startswith("http://gw.example:8080/files/")
    bad = plain.simulate_get("/search/", params=params, host="evil.example/<x>")
    assert bad.status_code == 400


def test_unexpected_errors_are_500_without_details(archive: Archive) -> None:
    class Broken(StreamOnlyStore):
        def stat(self, key: str) -> Entry:
            raise RuntimeError("secret detail /srv/path")

    store = Broken(archive.root)
    config = make_config(store)
    client = falcon.testing.TestClient(create_app(config))
    signed, _ = config.signer.sign(store.description, "a.wav", 60)
    answer = client.simulate_get(f"/files/{signed}/a.wav")
    assert answer.status_code == 500
    assert answer.json == {"status": "ERROR", "error": "internal error"}


def test_a_link_expires_after_its_ttl_and_the_leeway(archive: Archive) -> None:
    """Expiry on the gateway's own clock, a fake one moved by hand (no sleeping): a link works
    for its TTL and the leeway, then is 410; a new search gives a fresh link."""
    clock = FakeClock()
    signer = LinkSigner(["in-process-expiry-key-" + "k" * 20], clock=clock)
    config = replace(make_config(LocalStore(archive.root)), signer=signer, link_ttl=60)
    client = falcon.testing.TestClient(create_app(config))
    call = archive.call_with(1)
    params = {"token": TOKEN, "callid": call.callid, "timestamp": call.start}

    def fresh_link() -> tuple[str, float]:
        answer = client.simulate_post("/search/", params=params)
        assert answer.status_code == 200, answer.text
        (found,) = answer.json["files"]
        expires = datetime.fromisoformat(found["expires"].replace("Z", "+00:00"))
        assert expires.timestamp() == clock.now + lifetime(60, found["duration"])
        return "/files/" + found["url"].split("/files/", 1)[1], expires.timestamp()

    # a link lives --link-ttl plus the call's duration (tests/web/test_long_calls.py)
    path, expires = fresh_link()
    life = expires - clock.now
    got = client.simulate_get(path)
    assert got.status_code == 200
    assert got.headers["Cache-Control"] == "private, max-age=60"  # never beyond --link-ttl
    clock.advance(life - 15)  # caches may keep the file no longer than the link lives
    assert client.simulate_head(path).headers["Cache-Control"] == "private, max-age=15"
    clock.advance(15 + LEEWAY_SECONDS)  # expired, but within the leeway for other clocks
    got = client.simulate_get(path)
    assert got.status_code == 200
    assert got.headers["Cache-Control"] == "private, max-age=0"
    clock.advance(1)
    assert client.simulate_head(path).status_code == 410
    expired = client.simulate_get(path)
    assert expired.status_code == 410
    assert expired.json["status"] == "ERROR"
    assert "expired" in expired.json["error"]

    again, expires_again = fresh_link()  # searching again: a link valid from now on
    assert expires_again == clock.now + life
    assert client.simulate_get(again).status_code == 200


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/files/SIGNED.abc/x.wav", "/files/<redacted>/x.wav"),
        ("/files/SIGNED", "/files/<redacted>"),
        ("/search/", "/search/"),
        ("/a b\n", "/a%20b%0A"),
    ],
)
def test_redaction(path: str, logged: str) -> None:
    assert redact(path) == logged


class DyingStore(StreamOnlyStore):
    """Opens files fine, then its server "goes away" after ``good_chunks`` chunks."""

    good_chunks = 0

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        chunks = super().open(key, start, end)

        def dying() -> Iterator[bytes]:
            pieces = (c[i : i + 8192] for c in chunks for i in range(0, len(c), 8192))
            for n, piece in enumerate(pieces):
                if n >= self.good_chunks:
                    raise Unavailable(f"{self.description}: the server went away")
                yield piece

        return dying()


def serve(store: Any, config: WebConfig | None = None) -> tuple[str, Any]:
    config = config or make_config(store)
    server = waitress.create_server(
        AccessLog(create_app(config)), host="127.0.0.1", port=0, threads=4
    )
    threading.Thread(target=server.run, daemon=True).start()
    return f"http://127.0.0.1:{server.effective_port}", server


def link_of(url: str, archive: Archive) -> tuple[str, bytes]:
    call = archive.call_with(1)
    answer = requests.post(
        f"{url}/search/", data={"token": TOKEN, "callid": call.callid, "ts": call.start}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["files"][0]["url"], (archive.root / call.files[0]).read_bytes()


def test_a_store_failing_before_the_first_byte_gives_a_json_503(
    archive: Archive, caplog: pytest.LogCaptureFixture
) -> None:
    url, server = serve(DyingStore(archive.root))
    try:
        link, _ = link_of(url, archive)
        got = requests.get(link, timeout=10)
        assert got.status_code == 503
        assert got.json()["status"] == "ERROR"
        # the link's holder is told in neutral words; the store's own message (which names
        # the storage) goes to the server's log only
        assert "went away" not in got.text
        assert str(archive.root) not in got.text
        assert "went away" in caplog.text
        assert "Traceback" not in caplog.text
    finally:
        server.close()


def test_a_store_failing_mid_stream_cuts_the_body_short(archive: Archive) -> None:
    store = DyingStore(archive.root)
    store.good_chunks = 1
    url, server = serve(store)
    try:
        link, content = link_of(url, archive)
        pieces: list[bytes] = []
        answer = requests.get(link, timeout=10, stream=True)
        assert answer.status_code == 200
        with pytest.raises(requests.exceptions.RequestException):  # the client sees the cut
            pieces.extend(answer.iter_content(1024))
        answer.close()
        got = b"".join(pieces)
        assert 0 < len(got) < len(content)
        assert content.startswith(got)
        assert requests.get(f"{url}/healthz", timeout=10).ok  # the server goes on
    finally:
        server.close()


def test_store_failures_of_downloads_are_counted_in_the_metrics(archive: Archive) -> None:
    store = DyingStore(archive.root)
    config = make_config(store)
    url, server = serve(store, config)
    try:
        link, _ = link_of(url, archive)
        for _ in range(2):
            assert requests.get(link, timeout=10).status_code == 503
        count = config.metrics.registry.get_sample_value(
            "gateway_store_errors_total", {"source": store.description, "error": "Unavailable"}
        )
        assert count == 2
    finally:
        server.close()
