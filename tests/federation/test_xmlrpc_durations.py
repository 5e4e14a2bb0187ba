"""QueueMetrics' XML-RPC on a hub answers the durations of files found at a peer, as the peer
itself answers them, whether the hub relays the files (``--proxy-peers``) or not."""

from __future__ import annotations

import io
import wave
import xmlrpc.client
from collections.abc import Callable, Iterator

import pytest

from tests.federation.conftest import HUB_TOKEN, Hub, peer, site_args
from tests.web.conftest import Gateway
from tests.xmlrpc.conftest import wav49

PEER_TOKEN = "peer-token-of-site-e-4c1d"
ONE_FILE = "1773060000.201"  # a GSM (wav49) file of 75 s
TWO_LEGS = "1773060100.202"  # two PCM legs: 12 s and 7.5 s


def pcm(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00" * int(seconds * 8000) * 2)
    return out.getvalue()


@pytest.fixture(scope="module")
def site_e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("site-e")
    day = root / "2026/03/09"
    day.mkdir(parents=True)
    (day / f"q-300-200-20260309-144000-{ONE_FILE}.WAV").write_bytes(wav49(1875))
    (day / f"{TWO_LEGS}-in.wav").write_bytes(pcm(12))
    (day / f"{TWO_LEGS}-out.wav").write_bytes(pcm(7.5))
    gateway = Gateway(
        site_args(root, "--site-name", "e", "--search-all", token=PEER_TOKEN),
        root.parent / "site-e.log",
    )
    yield gateway
    gateway.stop()


def find_stored_file(url: str, token: str, callid: str) -> list[object]:
    proxy = xmlrpc.client.ServerProxy(f"{url}/xmlrpc?token={token}")
    answer = proxy.QMAudio.findStoredFile("", callid, "7", "supervisor")
    assert isinstance(answer, list)
    return answer


@pytest.mark.parametrize("relay", [False, True], ids=["site-links", "proxy-peers"])
@pytest.mark.parametrize(
    ("callid", "durations"), [(ONE_FILE, "1:15"), (TWO_LEGS, "0:12 0:08")], ids=["one", "multi"]
)
def test_xmlrpc_on_a_hub_answers_the_peers_durations(
    site_e: Gateway,
    start_hub: Callable[..., Hub],
    relay: bool,
    callid: str,
    durations: str,
) -> None:
    at_peer = find_stored_file(site_e.url, PEER_TOKEN, callid)
    assert at_peer[4] == durations  # what the site itself says
    extra = ("--proxy-peers",) if relay else ()
    hub = start_hub(
        peer(site_e.url, "e"), local=False, env={"GATEWAY_PEER_TOKEN_E": PEER_TOKEN}, extra=extra
    )
    at_hub = find_stored_file(hub.url, HUB_TOKEN, callid)
    assert at_hub[0] is True
    assert at_hub[2:] == at_peer[2:]  # sizes, encodings and durations, as the site answers
    hub_links = str(at_hub[1]).removeprefix("MULTI:").split()
    assert all(
        link.startswith((hub.url if relay else site_e.url) + "/files/") for link in hub_links
    )
