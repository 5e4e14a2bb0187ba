"""One search across several real gateways: order, --search-all, failing and hostile sites."""

from __future__ import annotations

import json
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

import requests

from tests.conftest import run_gateway
from tests.federation.conftest import (
    HUB_TOKEN,
    NOWHERE,
    ON_A_AND_B,
    ON_B_AND_C,
    ONLY_B,
    ONLY_C,
    SITE_TOKENS,
    MakeHostile,
    SilentPeer,
    Sites,
    StartHub,
    audio,
    closed_port_url,
    file_name,
    json_answer,
    peer,
    send,
)


def sites_of(answer: dict[str, Any]) -> list[str | None]:
    return [f["site"] for f in answer["files"]]


def test_found_on_one_remote_site(sites: Sites, start_hub: StartHub) -> None:
    hub = start_hub(peer(sites.url("b"), "b"), peer(sites.url("c"), "c"))
    answer = hub.search(ONLY_C)
    assert answer["errors"] == []
    [f] = answer["files"]
    assert f["site"] == "c"
    assert f["name"] == file_name(ONLY_C)
    # the site's own link, as it gave it: the browser downloads from the site
    assert f["url"].startswith(sites.url("c") + "/files/")
    got = requests.get(f["url"], timeout=30)
    assert got.status_code == 200
    assert got.content == audio("c", ONLY_C)
    assert f["size"] == len(audio("c", ONLY_C))


def test_first_source_in_path_order_wins_across_sites(sites: Sites, start_hub: StartHub) -> None:
    hub = start_hub(
        peer(sites.url("b"), "b"), peer(sites.url("c"), "c"), extra=("--site-name", "a")
    )
    assert sites_of(hub.search(ON_A_AND_B)) == ["a"]  # local first in --path
    assert sites_of(hub.search(ON_B_AND_C)) == ["b"]
    # the order is --path order, not who answers first
    hub2 = start_hub(peer(sites.url("c"), "c"), peer(sites.url("b"), "b"), local=False)
    assert sites_of(hub2.search(ON_B_AND_C)) == ["c"]


def test_search_all_across_sites(sites: Sites, start_hub: StartHub) -> None:
    hub = start_hub(peer(sites.url("b"), "b"), peer(sites.url("c"), "c"), extra=("--search-all",))
    answer = hub.search(ON_A_AND_B)
    assert sites_of(answer) == [None, "b"]  # local results: null without --site-name
    assert answer["files"][0]["url"].startswith(hub.url + "/files/")
    answer = hub.search(ON_B_AND_C)
    assert sites_of(answer) == ["b", "c"]
    bodies = [requests.get(f["url"], timeout=30).content for f in answer["files"]]
    assert bodies == [audio("b", ON_B_AND_C), audio("c", ON_B_AND_C)]


def test_found_nowhere(sites: Sites, start_hub: StartHub) -> None:
    hub = start_hub(peer(sites.url("b"), "b"), peer(sites.url("c"), "c"), peer(sites.url("d"), "d"))
    answer = hub.search(NOWHERE)
    assert answer == {"status": "OK", "callid": NOWHERE.callid, "files": [], "errors": []}


def test_a_stopped_site_is_an_error_entry(sites: Sites, start_hub: StartHub) -> None:
    hub = start_hub(peer(closed_port_url(), "down"), peer(sites.url("b"), "b"))
    answer = hub.search(ONLY_B)
    assert sites_of(answer) == ["b"]
    [error] = answer["errors"]
    assert error["site"] == "down"
    assert "cannot be reached" in error["error"]


def test_a_hung_site_does_not_hold_the_search(
    sites: Sites, start_hub: StartHub, silent_peer: SilentPeer
) -> None:
    hub = start_hub(
        peer(silent_peer.url, "hung"),
        peer(sites.url("c"), "c"),
        extra=("--peer-timeout", "1.5", "--search-all"),
    )
    started = time.monotonic()
    answer = hub.search(ONLY_C)
    elapsed = time.monotonic() - started
    assert sites_of(answer) == ["c"]
    assert answer["errors"] == [{"site": "hung", "error": "no answer within 1.5s"}]
    assert elapsed < 1.5 + 3  # the deadline, plus generous slack for a loaded machine
    # first-wins also gives up on it at the deadline: the hung site comes first in --path
    hub2 = start_hub(
        peer(silent_peer.url, "hung"), peer(sites.url("c"), "c"), extra=("--peer-timeout", "1")
    )
    answer = hub2.search(ONLY_C)
    assert sites_of(answer) == ["c"]
    assert answer["errors"][0]["site"] == "hung"


def test_wrong_token_is_reported_without_the_token(sites: Sites, start_hub: StartHub) -> None:
    env = {"GATEWAY_PEER_TOKEN_B": "not-the-right-token-123"}
    hub = start_hub(peer(sites.url("b"), "b"), env=env)
    resp = hub.post(ONLY_B)
    answer = resp.json()
    assert answer["files"] == []
    assert answer["errors"] == [{"site": "b", "error": "refused the token (HTTP 401)"}]
    assert "not-the-right-token-123" not in resp.text
    assert "not-the-right-token-123" not in hub.gateway.log()


def test_invalid_json_is_an_error_entry(
    sites: Sites, start_hub: StartHub, hostile: MakeHostile
) -> None:
    bad = hostile(lambda h: send(h, 200, b"<html>surprise</html>", Content_Type="text/html"))
    hub = start_hub(peer(bad.url, "bad"), peer(sites.url("b"), "b"))
    answer = hub.search(ONLY_B)
    assert sites_of(answer) == ["b"]
    assert answer["errors"] == [{"site": "bad", "error": "answered something that is not JSON"}]


def test_wrong_shapes_and_huge_answers_are_rejected(
    start_hub: StartHub, hostile: MakeHostile
) -> None:
    shapes = [
        json.dumps([1, 2]).encode(),
        json.dumps({"status": "OK", "files": "nope"}).encode(),
        json_answer([{"name": "../../x.wav", "url": "http://x/", "size": 1, "empty": False}]),
        b'{"status": "OK", "files": [' + b'{"a": 1},' * 200_000 + b"{}]}",
    ]
    peers = [hostile(lambda h, body=body: send(h, 200, body)) for body in shapes]
    hub = start_hub(*(peer(p.url, f"p{i}") for i, p in enumerate(peers)), extra=("--search-all",))
    answer = hub.search(ONLY_B)
    errors = {e["site"]: e["error"] for e in answer["errors"]}
    assert errors == {
        "p0": "invalid answer: not a JSON object",
        "p1": "invalid answer: no files list",
        "p2": "invalid answer: a file name is missing or unsafe",
        "p3": "answer larger than 1048576 bytes",
    }


def test_links_on_another_host_are_rejected(
    sites: Sites, start_hub: StartHub, hostile: MakeHostile
) -> None:
    # A genuine answer of site b, relayed by a peer at another address: every link is on b,
    # not on the peer that answered, so the whole answer is refused.
    def relay(handler: BaseHTTPRequestHandler) -> None:
        real = requests.post(
            f"{sites.url('b')}/search/",
            data={
                "token": SITE_TOKENS["b"],
                "callid": ONLY_B.callid,
                "timestamp": ONLY_B.timestamp,
            },
            timeout=10,
        )
        send(handler, 200, real.content, Content_Type="application/json")

    relay_peer = hostile(relay)
    hub = start_hub(peer(relay_peer.url, "relay"))
    answer = hub.search(ONLY_B)
    assert answer["files"] == []
    [error] = answer["errors"]
    assert error["site"] == "relay"
    assert error["error"] == f"invalid answer: a link is not on the site's URL {relay_peer.url}/"
    # the same files with a path prefix that is not the peer's are refused too
    prefixed = hostile(
        lambda h: send(
            h,
            200,
            json_answer(
                [
                    {
                        "name": "x-1.wav",
                        "url": f"{prefixed.url}/other/files/abc/x-1.wav",
                        "size": 10,
                        "empty": False,
                        "mtime": "2026-03-09T10:00:00Z",
                        "expires": "2026-03-09T10:05:00Z",
                    }
                ]
            ),
        )
    )
    hub2 = start_hub(f"gateway+{prefixed.url}/gw?site=prefixed", local=False)
    assert "not on the site's URL" in hub2.search(ONLY_B)["errors"][0]["error"]


def test_redirects_from_a_peer_are_not_followed(
    sites: Sites, start_hub: StartHub, hostile: MakeHostile
) -> None:
    target = sites.url("b") + "/search/"
    redirector = hostile(lambda h: send(h, 307, b"", Location=target))
    hub = start_hub(peer(redirector.url, "redir"))
    answer = hub.search(ONLY_B)
    assert answer["files"] == []
    assert answer["errors"] == [
        {"site": "redir", "error": "answered with a redirect (HTTP 307), which is not followed"}
    ]
    assert len(redirector.requests) == 1  # one search (the probe at start is a GET)


def test_peer_errors_pass_their_message(
    sites: Sites, start_hub: StartHub, hostile: MakeHostile
) -> None:
    failing = hostile(
        lambda h: send(
            h, 503, json.dumps({"status": "ERROR", "error": "smb://nas/rec: down\x07"}).encode()
        )
    )
    hub = start_hub(peer(failing.url, "nas"), peer(sites.url("b"), "b"))
    answer = hub.search(ONLY_B)
    assert sites_of(answer) == ["b"]
    assert answer["errors"] == [{"site": "nas", "error": "answered HTTP 503: smb://nas/rec: down"}]


def test_the_peer_gets_the_token_the_call_and_the_hop_header(
    start_hub: StartHub, hostile: MakeHostile
) -> None:
    seen = hostile(lambda h: send(h, 200, json_answer([])))
    hub = start_hub(peer(seen.url, "b"), extra=("--site-name", "hub"))
    assert hub.search(ON_A_AND_B, tenant="t1")["errors"] == []
    hub.search(NOWHERE)
    headers = seen.requests[-1]
    assert headers["Authorization"] == f"Bearer {SITE_TOKENS['b']}"
    assert headers["X-Gateway-Via"] == "hub"
    assert HUB_TOKEN not in json.dumps(headers)


def test_a_proxied_peer_cannot_make_the_hub_serve_a_page(
    sites: Sites, start_hub: StartHub, hostile: MakeHostile, tmp_path: Any
) -> None:
    # A peer answers a genuine-looking search (site b's answer, its links moved onto the
    # peer's own address), then serves its "recording" as an HTML page with a script.
    fetched: list[str] = []

    def respond(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/healthz":  # the hub's probe at its start
            send(handler, 200, b'{"status": "OK"}', Content_Type="application/json")
        elif handler.path.startswith("/search"):
            real = requests.post(
                f"{sites.url('b')}/search/",
                data={"token": SITE_TOKENS["b"], "callid": ONLY_B.callid,
                      "timestamp": ONLY_B.timestamp},
                timeout=10,
            )  # fmt: skip
            moved = real.content.replace(sites.url("b").encode(), evil.url.encode())
            send(handler, 200, moved, Content_Type="application/json")
        else:
            fetched.append(handler.path)
            page = b"<script>alert(document.domain)</script>"
            send(handler, 200, page, Content_Type="text/html", Content_Disposition="inline")

    evil = hostile(respond)
    audit = tmp_path / "audit.jsonl"
    hub = start_hub(peer(evil.url, "evil"), extra=("--proxy-peers", "--audit-log", str(audit)))
    [f] = hub.search(ONLY_B)["files"]
    assert f["url"].startswith(hub.url)
    answer = requests.get(f["url"], timeout=30)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "audio/wav"  # the hub's own, from the name
    assert "sandbox" in answer.headers["Content-Security-Policy"]
    assert answer.headers["Content-Disposition"].startswith('inline; filename="call-')
    # the peer's own signed link is a bearer secret: the hub's audit log never holds it
    hub.gateway.stop()
    [path] = fetched
    peer_signed = path.split("/files/", 1)[1].split("/", 1)[0]
    assert len(peer_signed) > 40
    text = audit.read_text()
    [line] = [json.loads(x) for x in text.splitlines() if '"download"' in x]
    assert "<redacted>" in line["file"]
    assert peer_signed not in text


def test_a_trickling_site_does_not_hold_up_the_command_line(hostile: MakeHostile) -> None:
    """A site that sends its header one byte at a time, each well within the socket timeout,
    never finishes an answer; the command ends at the deadline all the same (the asks run on
    daemon workers, which the process does not wait for at exit)."""

    def trickle(handler: BaseHTTPRequestHandler) -> None:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(120):
            handler.wfile.write(b"a")
            handler.wfile.flush()
            time.sleep(0.25)

    slow = hostile(trickle)
    started = time.monotonic()
    done = run_gateway(
        "search",
        "--path",
        peer(slow.url, "slow"),
        "--peer-timeout",
        "1",
        "--callid",
        ONLY_C.callid,
        env={"GATEWAY_PEER_TOKEN_SLOW": "slow-site-token"},
    )
    elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    assert b"site slow: no answer within 1s" in done.stderr
    assert elapsed < 15  # the trickle alone lasts 30 s
