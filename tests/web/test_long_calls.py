"""A link lasts for the whole listening of a long call: its life is ``--link-ttl`` plus the
recording's duration (``gateway.links.lifetime``), capped, and a short call's link stays short.

Real HTTP through an in-process waitress, whose link signer runs on a clock moved by hand:
a supervisor who opens a one-hour call, pauses it past the TTL and seeks gets the range, not
410. The recordings are sparse files with honest WAV headers (an hour of silence costs no
disk).
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import waitress

from gateway.links import MAX_LISTENING
from gateway.placeholders import PathPattern
from gateway.query import parse_timezone
from gateway.search import SearchSettings
from gateway.secret_files import Secret
from gateway.signing import LEEWAY_SECONDS, LinkSigner
from gateway.sources import StoreSource
from gateway.web.accesslog import AccessLog
from gateway.web.app import create_app
from gateway.web.config import WebConfig
from gateway_local import LocalStore
from tests.conftest import FakeClock
from tests.s3.conftest import BucketFactory, S3Env, admin, make_bucket, s3env  # noqa: F401 (fixtures)
from tests.web.conftest import TOKEN, TZ, Gateway
from tests.xmlrpc.conftest import wav49

TTL = 300
HOUR = 3600
DAY = "2026/03/09"
TIMESTAMP = "2026-03-09.10:00:00"
LONG = "1773046800.301"  # one hour
SHORT = "1773046800.302"  # ten seconds
ENDLESS = "1773046800.303"  # a header that claims ten hours
UNKNOWN = "1773046800.304"  # an MP3: no cheap duration


def silent_wav(path: Path, seconds: int, *, rate: int = 8000, width: int = 2) -> int:
    """A mono PCM WAV of ``seconds`` of silence whose header tells its true data size; sparse.
    Returns the file's size."""
    data = seconds * rate * width
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + data)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * width, width, 8 * width)
        + b"data"
        + struct.pack("<I", data)
    )
    with path.open("wb") as f:
        f.write(header)
        f.truncate(len(header) + data)
    return len(header) + data


@dataclass
class Server:
    url: str
    clock: FakeClock
    sizes: dict[str, int]

    def link(self, callid: str) -> dict[str, Any]:
        answer = requests.post(
            f"{self.url}/search/",
            data={"token": TOKEN, "callid": callid, "timestamp": TIMESTAMP},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        (found,) = answer.json()["files"]
        found["expires_at"] = datetime.fromisoformat(found["expires"].replace("Z", "+00:00"))
        return dict(found)

    def get(self, url: str, start: int, end: int) -> requests.Response:
        return requests.get(url, headers={"Range": f"bytes={start}-{end}"}, timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    folder = tmp_path / DAY
    folder.mkdir(parents=True)
    sizes = {
        LONG: silent_wav(folder / f"q-300-200-20260309-100000-{LONG}.wav", HOUR),
        SHORT: silent_wav(folder / f"q-300-200-20260309-100000-{SHORT}.wav", 10),
        ENDLESS: silent_wav(
            folder / f"q-300-200-20260309-100000-{ENDLESS}.wav", 10 * HOUR, width=1
        ),
    }
    (folder / f"q-300-200-20260309-100000-{UNKNOWN}.mp3").write_bytes(b"ID3\x03" + bytes(5000))
    store = LocalStore(tmp_path)
    clock = FakeClock()
    config = WebConfig(
        sources=[StoreSource(store.description, store, PathPattern("%YY/%MM/%DD"))],
        settings=SearchSettings(timezone=parse_timezone(TZ)),
        token=Secret(TOKEN),
        signer=LinkSigner(["long-calls-test-key-" + "0123456789abcdef"], clock=clock),
        link_ttl=TTL,
    )
    httpd = waitress.create_server(
        AccessLog(create_app(config)), host="127.0.0.1", port=0, threads=4
    )
    thread = threading.Thread(target=httpd.run, daemon=True)
    thread.start()
    yield Server(f"http://127.0.0.1:{httpd.effective_port}", clock, sizes)
    httpd.trigger.pull_trigger(httpd.close)  # closed on the server's own thread, not under it
    thread.join(5)
    assert not thread.is_alive()


def test_a_paused_long_call_can_be_sought_to_its_end(server: Server) -> None:
    found = server.link(LONG)
    assert found["duration"] == HOUR
    assert found["expires_at"].timestamp() == server.clock.now + TTL + HOUR
    size = server.sizes[LONG]
    assert server.get(found["url"], 0, 1023).status_code == 206  # the player starts

    # Paused for 20 minutes after 10 of listening: well past the TTL. Seeking to the middle.
    server.clock.advance(30 * 60)
    middle = size // 2
    part = server.get(found["url"], middle, middle + 65535)
    assert part.status_code == 206, part.text
    assert part.headers["Content-Range"] == f"bytes {middle}-{middle + 65535}/{size}"
    assert part.content == bytes(65536)
    remaining = int(found["expires_at"].timestamp() - server.clock.now)
    max_age = int(part.headers["Cache-Control"].rsplit("max-age=", 1)[1])
    assert 0 < max_age <= min(TTL, remaining)  # no cache keeps it beyond the link's life

    # The end of the recording, at the last moment of the link's life (with the leeway).
    server.clock.now = found["expires_at"].timestamp() + LEEWAY_SECONDS
    assert server.get(found["url"], size - 1024, size - 1).status_code == 206
    server.clock.advance(1)
    gone = server.get(found["url"], 0, 1023)
    assert gone.status_code == 410
    assert "expired" in gone.json()["error"]


def test_a_short_call_link_stays_short(server: Server) -> None:
    found = server.link(SHORT)
    assert found["duration"] == 10
    assert found["expires_at"].timestamp() == server.clock.now + TTL + 10
    server.clock.advance(TTL + 10 + LEEWAY_SECONDS + 1)
    assert server.get(found["url"], 0, 1023).status_code == 410


def test_the_added_life_is_capped(server: Server) -> None:
    found = server.link(ENDLESS)
    assert found["duration"] == 10 * HOUR
    assert found["expires_at"].timestamp() == server.clock.now + TTL + MAX_LISTENING
    server.clock.advance(TTL + MAX_LISTENING + LEEWAY_SECONDS + 1)
    assert server.get(found["url"], 0, 1023).status_code == 410


def test_without_a_known_duration_a_link_lives_its_ttl(server: Server) -> None:
    found = server.link(UNKNOWN)
    assert found["duration"] is None
    assert found["expires_at"].timestamp() == server.clock.now + TTL
    server.clock.advance(TTL + LEEWAY_SECONDS + 1)
    assert server.get(found["url"], 0, 1023).status_code == 410


def test_a_redirect_to_the_store_lasts_as_long_as_the_link(
    s3env: S3Env,  # noqa: F811
    make_bucket: BucketFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    """With ``--s3-redirect`` a player keeps asking the presigned URL it was sent to: that URL
    must live as long as the link, not only ``--link-ttl``. A real ``gateway serve`` in front
    of a real S3 server, a one-hour GSM recording (65-byte blocks of 40 ms: 5.85 MB)."""
    key = f"pbx/{DAY}/in-100-200-20260309-100000-{LONG}.wav"
    bucket = make_bucket({key: wav49(HOUR * 25)})
    args = ["--path", s3env.url(bucket, "pbx"), "--layout", "freepbx", "--timezone", "UTC",
            "--bind-to", "127.0.0.1:0", "--token", TOKEN, "--link-ttl", str(TTL),
            "--s3-redirect"]  # fmt: skip
    gw = Gateway(args, tmp_path / "gateway.log", s3env.environ())
    try:
        answer = requests.post(
            f"{gw.url}/search/",
            data={"token": TOKEN, "callid": LONG, "timestamp": TIMESTAMP},
            timeout=30,
        )
        [found] = answer.json()["files"]
        assert found["duration"] == HOUR
        redirect = requests.get(found["url"], allow_redirects=False, timeout=30)
        assert redirect.status_code == 302
        presigned = redirect.headers["Location"]
        expires_in = int(parse_qs(urlsplit(presigned).query)["X-Amz-Expires"][0])
        assert TTL + HOUR - 60 < expires_in <= TTL + HOUR
        tail = requests.get(presigned, headers={"Range": "bytes=-65"}, timeout=30)
        assert tail.status_code == 206  # the store serves it, ranges included
        assert tail.content == bytes(65)
    finally:
        gw.stop()
