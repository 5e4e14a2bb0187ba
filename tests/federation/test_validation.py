"""The checks applied to peer configuration, peer answers and the hop header (pure functions)."""

from __future__ import annotations

import json

import pytest

from gateway.errors import UsageError
from gateway.remote import PeerError, PeerURL, parse_answer, parse_peer, token_env_name
from gateway.via import MAX_HOPS, LoopDetected, incoming_via

PEER = PeerURL("https", "rec.example.com", 443, "/audiovault")
GOOD_FILE = {
    "name": "in-1-2-20260309-110230-1773050550.110.wav",
    "url": "https://rec.example.com/audiovault/files/eyJh.sig/in-1-2-20260309-110230-1773050550.110.wav",
    "size": 1000,
    "type": "text/html",
    "format": "exe",
    "mtime": "2026-03-09T10:02:30Z",
    "expires": "2026-03-09T10:07:30Z",
    "empty": False,
}


@pytest.mark.parametrize(
    "url",
    [
        "https://REC.example.com:443/audiovault/files/a/b.wav",
        "https://rec.example.com/audiovault/files/a%20b/c.wav",
    ],
)
def test_links_on_the_peer(url: str) -> None:
    assert PEER.path_of(url) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://rec.example.com/audiovault/files/a/b.wav",  # scheme
        "https://rec.example.com:8443/audiovault/files/a/b.wav",  # port
        "https://evil.example.com/audiovault/files/a/b.wav",  # host
        "https://rec.example.com.evil.net/audiovault/files/a/b.wav",
        "https://rec.example.com@evil.net/audiovault/files/a/b.wav",  # user part
        "https://u@rec.example.com/audiovault/files/a/b.wav",
        "https://rec.example.com/other/files/a/b.wav",  # prefix
        "https://rec.example.com/audiovaultX/files/a/b.wav",
        "https://rec.example.com/audiovault/../admin",
        "https://rec.example.com/audiovault/files/%2e%2e/x",
        "https://rec.example.com/audiovault/files//b.wav",
        "https://rec.example.com/audiovault/files/a/b.wav?x=1",
        "https://rec.example.com/audiovault/files/a/b.wav#f",
        "https://rec.example.com:99999/audiovault/files/a/b.wav",
        "javascript:alert(1)",
        "//rec.example.com/audiovault/files/a/b.wav",
    ],
)
def test_links_elsewhere_are_refused(url: str) -> None:
    assert PEER.path_of(url) is None


def test_a_good_answer_keeps_the_hubs_own_types() -> None:
    body = json.dumps({"status": "OK", "files": [GOOD_FILE]}).encode()
    [rec] = parse_answer(
        body, PEER, "milan", "gateway+https://rec.example.com/audiovault"
    ).recordings
    assert rec.elsewhere is not None
    assert (rec.mime, rec.format, rec.elsewhere.site, rec.name) == (
        "audio/wav",
        "wav",
        "milan",
        GOOD_FILE["name"],
    )
    assert rec.key == "files/eyJh.sig/in-1-2-20260309-110230-1773050550.110.wav"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"name": "x.exe"}, "'x.exe' is not an audio file"),
        ({"name": "a\nb.wav"}, "a file name is missing or unsafe"),
        ({"size": -1}, "a file size is not a whole number"),
        ({"size": True}, "a file size is not a whole number"),
        ({"empty": "no"}, "empty is not true or false"),
        ({"mtime": "yesterday"}, "mtime is not an ISO 8601 time"),
        ({"expires": "2026-03-09T10:07:30"}, "expires has no time zone"),
        ({"url": None}, "a file has no url"),
    ],
)
def test_bad_files_refuse_the_answer(change: dict[str, object], reason: str) -> None:
    body = json.dumps({"status": "OK", "files": [GOOD_FILE, {**GOOD_FILE, **change}]}).encode()
    with pytest.raises(PeerError) as caught:
        parse_answer(body, PEER, "milan", "x")
    assert caught.value.reason == f"invalid answer: {reason}"


def test_nested_errors_are_named_by_path_and_cleaned() -> None:
    body = {"status": "OK", "files": [], "errors": [{"site": "turin", "error": "down\x1b[31m"}]}
    answer = parse_answer(json.dumps(body).encode(), PEER, "milan", "x")
    assert [(e.site, e.error) for e in answer.errors] == [("milan/turin", "down [31m")]


def test_peer_urls() -> None:
    env = {"GATEWAY_PEER_TOKEN_MILAN": "t1", "GATEWAY_PEER_TOKEN_10_0_0_7_4000": "t2"}
    peer, site, token = parse_peer("gateway+https://Rec.Example.com/audiovault/?site=milan", env)
    assert (peer, site, token) == (PEER, "milan", "t1")
    peer, site, token = parse_peer("gateway+http://10.0.0.7:4000", env)
    assert (peer.base, site, token) == ("http://10.0.0.7:4000", "10.0.0.7:4000", "t2")
    assert token_env_name("rome-1.a") == "GATEWAY_PEER_TOKEN_ROME_1_A"
    for bad in (
        "gateway+https://",
        "gateway+https://h/a/../b",
        "gateway+https://h?site=has space",
        "gateway+https://h#x",
        "gateway+https://h:notaport",
    ):
        with pytest.raises(UsageError):
            parse_peer(bad, {"GATEWAY_PEER_TOKEN_H": "t"})


def test_hop_header() -> None:
    assert incoming_via(None, "a") == ["a"]
    assert incoming_via("x, y", "a") == ["x", "y", "a"]
    with pytest.raises(LoopDetected):
        incoming_via("x,a", "a")
    with pytest.raises(LoopDetected):
        incoming_via(",".join(f"s{i}" for i in range(MAX_HOPS)), "a")
    with pytest.raises(UsageError):
        incoming_via("x y", "a")
