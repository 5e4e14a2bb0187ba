"""A hub says at start which peers it cannot reach, within the peer timeout, and serves."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from subprocess import PIPE

from tests.conftest import GATEWAY, wait_until
from tests.federation.conftest import (
    HUB_TOKEN,
    ON_A_AND_B,
    ONLY_B,
    SITE_TOKENS,
    Hub,
    MakeHostile,
    SilentPeer,
    Sites,
    StartHub,
    closed_port_url,
    json_answer,
    peer,
    send,
    site_args,
)

DOWN_TOKEN = "token-of-the-down-site-7f3e"


def warnings(hub: Hub) -> list[str]:
    prefix = "gateway: warning: "
    lines = hub.gateway.log().splitlines()
    return [line.removeprefix(prefix) for line in lines if line.startswith(prefix)]


def test_a_peer_down_at_start_is_warned_about_and_the_hub_serves(
    sites: Sites, start_hub: StartHub
) -> None:
    env = {"GATEWAY_PEER_TOKEN_DOWN": DOWN_TOKEN, "GATEWAY_PEER_TOKEN_B": SITE_TOKENS["b"]}
    hub = start_hub(peer(closed_port_url(), "down"), peer(sites.url("b"), "b"), env=env)
    [line] = warnings(hub)  # one line, for the down site only (b is up)
    assert line.startswith("site down: cannot be reached")
    assert DOWN_TOKEN not in hub.gateway.log()
    # it serves: its own archive and the site that is up answer
    answer = hub.search(ON_A_AND_B)
    assert [f["site"] for f in answer["files"]] == [None]
    assert hub.search(ONLY_B)["files"][0]["site"] == "b"


def test_a_hung_peer_delays_the_start_by_the_peer_timeout_at_most(
    sites: Sites, start_hub: StartHub, silent_peer: SilentPeer
) -> None:
    started = time.monotonic()
    hub = start_hub(peer(silent_peer.url, "hung"), extra=("--peer-timeout", "1"))
    elapsed = time.monotonic() - started
    assert warnings(hub) == ["site hung: no answer within 1s (serving anyway)"]
    # the warning says the 1 s timeout was used; the bound only catches a probe that hangs
    # (a loaded 2-core machine can take seconds to start a gateway)
    assert elapsed < 1 + 14
    assert hub.search(ON_A_AND_B)["files"]


def test_the_probe_asks_healthz_without_the_token(
    start_hub: StartHub, hostile: MakeHostile
) -> None:
    seen = hostile(lambda h: send(h, 200, json_answer([])))
    hub = start_hub(peer(seen.url, "b"))
    assert warnings(hub) == []
    [probe] = seen.probes
    assert probe["path"] == "/healthz"
    assert "Authorization" not in probe
    assert seen.requests == []  # no search is made at start


def test_a_peer_answering_an_error_at_start_is_warned_about(
    start_hub: StartHub, hostile: MakeHostile
) -> None:
    failing = hostile(lambda h: send(h, 502, b"bad gateway"))
    hub = start_hub(peer(failing.url, "proxied"))
    assert warnings(hub) == ["site proxied: answered HTTP 502 (serving anyway)"]


def test_a_reload_while_the_peers_are_probed_never_kills_the_hub(
    sites: Sites, silent_peer: SilentPeer, tmp_path: Path
) -> None:
    """``systemctl reload`` right after ``start`` (logrotate, configuration management) comes
    while the hub still waits for its peers: it used to end the process (status 129)."""
    path = f"{sites.roots['a']},{peer(silent_peer.url, 'hung')}"
    args = site_args(sites.roots["a"], "--peer-timeout", "4", token=HUB_TOKEN, path=path)
    env = {**os.environ, "GATEWAY_PEER_TOKEN_HUNG": DOWN_TOKEN}
    with (tmp_path / "hub.log").open("wb") as log:
        proc = subprocess.Popen([*GATEWAY, "serve", *args], stdout=PIPE, stderr=log, env=env)
    try:
        wait_until(lambda: silent_peer.held, 30, what="the start-up probe of the peer")
        proc.send_signal(signal.SIGHUP)
        assert proc.stdout is not None
        banner = proc.stdout.readline().decode()
        assert banner.startswith("gateway: serving on"), (proc.wait(10), banner)
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(30)


def test_peers_are_probed_at_once_not_one_after_the_other(start_hub: StartHub) -> None:
    silent = [SilentPeer() for _ in range(3)]
    try:
        hung = [peer(s.url, f"hung{n}") for n, s in enumerate(silent)]
        env = {f"GATEWAY_PEER_TOKEN_HUNG{n}": DOWN_TOKEN for n in range(3)}
        started = time.monotonic()
        hub = start_hub(*hung, env=env, extra=("--peer-timeout", "3"))
        elapsed = time.monotonic() - started
    finally:
        for s in silent:
            s.close()
    assert len(warnings(hub)) == 3
    assert elapsed < 3 * 3  # one after the other: at least 9 s
