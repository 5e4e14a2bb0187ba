"""Proxied downloads with ranges, federation loops, and the command line over remote sites."""

from __future__ import annotations

import json
import time
from pathlib import Path

import requests

from tests.conftest import free_port, run_gateway
from tests.federation.conftest import (
    HUB_TOKEN,
    ON_A_AND_B,
    ON_B_AND_C,
    ONLY_B,
    ONLY_C,
    SITE_TOKENS,
    Sites,
    StartHub,
    audio,
    file_name,
    peer,
    peer_env,
    site_args,
)
from tests.web.conftest import Gateway


def test_proxy_mode_streams_ranges_through_the_hub(sites: Sites, start_hub: StartHub) -> None:
    hub = start_hub(peer(sites.url("b"), "b"), peer(sites.url("c"), "c"), extra=("--proxy-peers",))
    [f] = hub.search(ONLY_C)["files"]
    assert f["site"] == "c"
    assert f["url"].startswith(hub.url + "/files/")
    assert f["url"].endswith(f"/call-{ONLY_C.callid}.wav")  # the hub's own, neutral name
    want = audio("c", ONLY_C)

    whole = requests.get(f["url"], timeout=30)
    assert whole.status_code == 200
    assert whole.content == want
    assert whole.headers["Content-Type"] == "audio/wav"
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert whole.headers["Referrer-Policy"] == "no-referrer"
    assert whole.headers["Cache-Control"].startswith("private, max-age=")

    part = requests.get(f["url"], headers={"Range": "bytes=1000-1999"}, timeout=30)
    assert part.status_code == 206
    assert part.content == want[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(want)}"
    tail = requests.get(f["url"], headers={"Range": "bytes=-100"}, timeout=30)
    assert (tail.status_code, tail.content) == (206, want[-100:])
    safari = requests.get(f["url"], headers={"Range": "bytes=0-1"}, timeout=30)
    assert (safari.status_code, safari.content) == (206, b"RI")
    beyond = requests.get(f["url"], headers={"Range": f"bytes={len(want) + 10}-"}, timeout=30)
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(want)}"

    etag = whole.headers["ETag"]
    assert requests.get(f["url"], headers={"If-None-Match": etag}, timeout=30).status_code == 304
    kept = requests.get(f["url"], headers={"Range": "bytes=5-9", "If-Range": etag}, timeout=30)
    assert (kept.status_code, kept.content) == (206, want[5:10])
    stale = requests.get(f["url"], headers={"Range": "bytes=5-9", "If-Range": '"old"'}, timeout=30)
    assert (stale.status_code, stale.content) == (200, want)
    head = requests.head(f["url"], timeout=30)
    assert (head.status_code, head.headers["Content-Length"]) == (200, str(len(want)))

    # the hub's own links still work next to proxied ones, and forged links are refused
    mixed = start_hub(peer(sites.url("b"), "b"), extra=("--proxy-peers", "--search-all"))
    files = mixed.search(ON_A_AND_B)["files"]
    assert [requests.get(x["url"], timeout=30).content for x in files] == [
        audio("a", ON_A_AND_B),
        audio("b", ON_A_AND_B),
    ]
    forged = f["url"].replace("/files/", "/files/x", 1)
    assert requests.get(forged, timeout=30).status_code == 403


def test_proxy_of_a_stopped_site_is_a_json_502(
    sites: Sites, tmp_path: Path, start_hub: StartHub
) -> None:
    root = sites.roots["b"]
    site = Gateway(site_args(root, "--site-name", "b", token=SITE_TOKENS["b"]), tmp_path / "b2.log")
    try:
        hub = start_hub(peer(site.url, "b"), extra=("--proxy-peers",))
        [f] = hub.search(ONLY_B)["files"]
    finally:
        site.stop()
    resp = requests.get(f["url"], timeout=30)
    assert resp.status_code == 502
    assert resp.json()["status"] == "ERROR"
    assert resp.json()["error"].startswith("site b: cannot be reached")


def test_a_federation_loop_ends_quickly_with_an_error(sites: Sites, tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    url_a, url_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    env = {"GATEWAY_PEER_TOKEN_A": HUB_TOKEN, "GATEWAY_PEER_TOKEN_B": SITE_TOKENS["b"]}
    a = b = None
    try:
        a = Gateway(
            site_args(
                sites.roots["a"],
                "--site-name",
                "a",
                "--bind-to",
                f"127.0.0.1:{port_a}",
                "--peer-timeout",
                "20",
                token=HUB_TOKEN,
                path=f"{sites.roots['a']},{peer(url_b, 'b')}",
            ),
            tmp_path / "a.log",
            env,
        )
        b = Gateway(
            site_args(
                sites.roots["b"],
                "--site-name",
                "b",
                "--bind-to",
                f"127.0.0.1:{port_b}",
                "--peer-timeout",
                "20",
                token=SITE_TOKENS["b"],
                path=f"{sites.roots['b']},{peer(url_a, 'a')}",
            ),
            tmp_path / "b.log",
            env,
        )
        started = time.monotonic()
        resp = requests.post(
            f"{url_a}/search/",
            data={
                "token": HUB_TOKEN,
                "callid": ON_B_AND_C.callid,
                "timestamp": ON_B_AND_C.timestamp,
            },
            timeout=60,
        )
        elapsed = time.monotonic() - started
        answer = resp.json()
        assert resp.status_code == 200
        assert elapsed < 10  # far below the 20 s peer timeout: the loop is cut, not timed out
        assert [f["site"] for f in answer["files"]] == ["b"]
        assert answer["errors"] == []  # b found it itself: first wins, a's refusal unneeded
        answer = requests.post(
            f"{url_a}/search/",
            data={"token": HUB_TOKEN, "callid": ONLY_C.callid, "timestamp": ONLY_C.timestamp},
            timeout=60,
        ).json()
        assert time.monotonic() - started < 10
        assert answer["files"] == []
        [error] = answer["errors"]
        assert error["site"] == "b/a"
        assert error["error"] == (
            "answered HTTP 508: federation loop: this search already passed through this "
            "gateway (a -> b -> a)"
        )
        # asked directly, a search that says it already passed through a gets 508
        direct = requests.post(
            f"{url_a}/search/",
            data={"token": HUB_TOKEN, "callid": ONLY_B.callid},
            headers={"X-Gateway-Via": "x,a"},
            timeout=30,
        )
        assert direct.status_code == 508
        chain = requests.post(
            f"{url_a}/search/",
            data={"token": HUB_TOKEN, "callid": ONLY_B.callid},
            headers={"X-Gateway-Via": "p,q,r,s"},
            timeout=30,
        )
        assert chain.status_code == 508
        assert "too many federation hops" in chain.json()["error"]
    finally:
        for gw in (a, b):
            if gw is not None:
                gw.stop()


def test_a_loop_without_site_names_is_cut_too(sites: Sites, tmp_path: Path) -> None:
    port_a, port_b = free_port(), free_port()
    env = {"GATEWAY_PEER_TOKEN_A": HUB_TOKEN, "GATEWAY_PEER_TOKEN_B": SITE_TOKENS["b"]}
    gws = []
    try:
        for port, other, name, token in (
            (port_a, port_b, "b", HUB_TOKEN),
            (port_b, port_a, "a", SITE_TOKENS["b"]),
        ):
            gws.append(
                Gateway(
                    site_args(
                        sites.roots["d"],
                        "--bind-to",
                        f"127.0.0.1:{port}",
                        "--peer-timeout",
                        "20",
                        token=token,
                        path=peer(f"http://127.0.0.1:{other}", name),
                    ),
                    tmp_path / f"{name}.log",
                    env,
                )
            )
        started = time.monotonic()
        resp = requests.post(
            f"http://127.0.0.1:{port_a}/search/",
            data={"token": HUB_TOKEN, "callid": ONLY_B.callid},
            timeout=60,
        )
        assert time.monotonic() - started < 10
        [error] = resp.json()["errors"]
        assert "federation loop" in error["error"]
    finally:
        for gw in gws:
            gw.stop()


def test_command_line_search_and_get_over_remote_sites(sites: Sites, tmp_path: Path) -> None:
    path = f"{sites.roots['a']},{peer(sites.url('b'), 'b')},{peer(sites.url('c'), 'c')}"
    common = ["--path", path, "--layout", "freepbx", "--timezone", "Europe/Rome"]
    call = ["--callid", ON_B_AND_C.callid, "--timestamp", ON_B_AND_C.timestamp]
    result = run_gateway("search", *common, *call, "--json", "--search-all", env=peer_env())
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [(r["site"], r["name"]) for r in listed] == [
        ("b", file_name(ON_B_AND_C)),
        ("c", file_name(ON_B_AND_C)),
    ]
    assert listed[0]["url"].startswith(sites.url("b") + "/files/")

    out = tmp_path / "got"
    result = run_gateway("get", *common, *call, "-o", str(out), env=peer_env())
    assert result.returncode == 0, result.stderr
    assert (out).read_bytes() == audio("b", ON_B_AND_C)

    # a site that is down: a warning; nothing found anywhere and a site down: exit status 3
    down = f"{peer('http://127.0.0.1:9', 'down')},{peer(sites.url('c'), 'c')}"
    args = ["--path", down, "--layout", "freepbx", "--timezone", "Europe/Rome"]
    found = run_gateway(
        "search",
        *args,
        "--callid",
        ONLY_C.callid,
        "--timestamp",
        ONLY_C.timestamp,
        env=peer_env(DOWN="x"),
    )
    assert found.returncode == 0
    assert b"gateway: warning: site down: cannot be reached" in found.stderr
    missing = run_gateway("search", *args, "--callid", ONLY_B.callid, env=peer_env(DOWN="x"))
    assert missing.returncode == 3
    assert b"some sites could not be searched" in missing.stderr


def test_peer_configuration_errors(sites: Sites) -> None:
    common = ["--layout", "freepbx", "--timezone", "Europe/Rome", "--callid", ONLY_B.callid]
    no_token = run_gateway(
        "search", "--path", peer(sites.url("b"), "b"), *common, env={"GATEWAY_PEER_TOKEN_B": ""}
    )
    assert no_token.returncode == 2
    assert (
        b"no token for site b: set GATEWAY_PEER_TOKEN_B or add token_file=FILE" in no_token.stderr
    )
    in_url = run_gateway("search", "--path", "gateway+http://u:secret99@127.0.0.1:1", *common)
    assert in_url.returncode == 2
    assert b"secret99" not in in_url.stderr
    assert b"must not hold credentials" in in_url.stderr
    token_option = run_gateway(
        "search", "--path", "gateway+http://127.0.0.1:1?token=secret98", *common
    )
    assert token_option.returncode == 2
    assert b"unknown option 'token'" in token_option.stderr
    twice = run_gateway(
        "search",
        "--path",
        f"{peer(sites.url('b'), 'b')},{peer(sites.url('c'), 'b')}",
        *common,
        env=peer_env(),
    )
    assert twice.returncode == 2
    assert b"listed twice" in twice.stderr


def test_token_file_in_the_peer_url(sites: Sites, tmp_path: Path) -> None:
    token_file = tmp_path / "b.token"
    token_file.write_text(SITE_TOKENS["b"] + "\n")
    item = f"gateway+{sites.url('b')}?site=rome&token_file={token_file}"
    result = run_gateway(
        "search",
        "--path",
        item,
        "--layout",
        "freepbx",
        "--timezone",
        "Europe/Rome",
        "--callid",
        ONLY_B.callid,
        "--timestamp",
        ONLY_B.timestamp,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["site"] == "rome"
