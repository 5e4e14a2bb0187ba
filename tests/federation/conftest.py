"""Real ``gateway serve`` sites on loopback, each with its own archive, and hostile peers.

Sites ``b``, ``c`` and ``d`` are started once per session; each test starts its hub (and, for
loops, its pair of gateways) itself. Hostile peers are tiny real HTTP servers in a thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.web.conftest import Gateway

TZ = ZoneInfo("Europe/Rome")
HUB_TOKEN = "hub-token-5b0e1f"
SITE_TOKENS = {"b": "site-b-token-81c2", "c": "site-c-token-9f3a", "d": "site-d-token-27de"}


@dataclass(frozen=True)
class Call:
    callid: str
    start: datetime

    @property
    def timestamp(self) -> str:
        return self.start.strftime("%Y-%m-%d.%H:%M:%S")


ONLY_B = Call("1773050550.110", datetime(2026, 3, 9, 11, 2, 30, tzinfo=TZ))
ONLY_C = Call("1773051000.111", datetime(2026, 3, 9, 11, 10, 0, tzinfo=TZ))
ON_A_AND_B = Call("1773052000.112", datetime(2026, 3, 9, 11, 26, 40, tzinfo=TZ))
ON_B_AND_C = Call("1773053000.113", datetime(2026, 3, 9, 11, 43, 20, tzinfo=TZ))
NOWHERE = Call("1773054000.114", datetime(2026, 3, 9, 12, 0, 0, tzinfo=TZ))

ARCHIVES: dict[str, list[Call]] = {
    "a": [ON_A_AND_B],
    "b": [ONLY_B, ON_A_AND_B, ON_B_AND_C],
    "c": [ONLY_C, ON_B_AND_C],
    "d": [],
}


def file_name(call: Call) -> str:
    stamp = call.start.strftime("%Y%m%d-%H%M%S")
    return f"in-200-100-{stamp}-{call.callid}.wav"


def audio(site: str, call: Call) -> bytes:
    """Distinct, reproducible bytes for each site and call (so a test can tell them apart)."""
    seed = hashlib.sha256(f"{site}/{call.callid}".encode()).digest()
    body = (seed * (150_000 // len(seed) + 1))[:150_000]
    return b"RIFF" + (len(body) + 36).to_bytes(4, "little") + b"WAVEfmt " + body


def make_archive(root: Path, site: str) -> Path:
    (root / "empty-marker").mkdir(parents=True, exist_ok=True)
    for call in ARCHIVES[site]:
        folder = root / call.start.strftime("%Y/%m/%d")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / file_name(call)).write_bytes(audio(site, call))
    return root


def site_args(root: Path, *extra: str, token: str, path: str | None = None) -> list[str]:
    return [
        "--path",
        path or str(root),
        "--layout",
        "freepbx",
        "--timezone",
        "Europe/Rome",
        "--bind-to",
        "127.0.0.1:0",
        "--token",
        token,
        *extra,
    ]


def peer(url: str, site: str) -> str:
    """``http://127.0.0.1:PORT`` -> the ``--path`` item of that gateway."""
    return f"gateway+{url}?site={site}"


def peer_env(**extra: str) -> dict[str, str]:
    """Peer tokens: the real sites', and ``NAME=token`` for more."""
    env = {f"GATEWAY_PEER_TOKEN_{name.upper()}": token for name, token in SITE_TOKENS.items()}
    return {**env, **{f"GATEWAY_PEER_TOKEN_{k}": v for k, v in extra.items()}}


def hostile_tokens(items: tuple[str, ...]) -> dict[str, str]:
    """A token for every peer that is not one of the real sites."""
    names = [item.rpartition("site=")[2] for item in items if "site=" in item]
    return {n.upper(): f"token-of-{n}" for n in names if n not in SITE_TOKENS}


@dataclass
class Sites:
    roots: dict[str, Path]
    gateways: dict[str, Gateway]

    def url(self, site: str) -> str:
        return self.gateways[site].url


@pytest.fixture(scope="session")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sites]:
    base = tmp_path_factory.mktemp("sites")
    roots = {name: make_archive(base / name, name) for name in ARCHIVES}
    gateways: dict[str, Gateway] = {}
    try:
        for name in ("b", "c", "d"):
            gateways[name] = Gateway(
                site_args(roots[name], "--site-name", name, token=SITE_TOKENS[name]),
                base / f"{name}.log",
            )
        yield Sites(roots, gateways)
    finally:
        for gw in gateways.values():
            gw.stop()


class Hub:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.url = gateway.url

    def search(self, call: Call, **extra: Any) -> dict[str, Any]:
        resp = self.post(call, **extra)
        assert resp.status_code == 200, resp.text
        answer: dict[str, Any] = resp.json()
        return answer

    def post(self, call: Call, token: str = HUB_TOKEN, **extra: Any) -> requests.Response:
        fields = {"token": token, "callid": call.callid, "timestamp": call.timestamp, **extra}
        return requests.post(f"{self.url}/search/", data=fields, timeout=60)


StartHub = Callable[..., Hub]
"""The ``start_hub`` fixture's type."""


@pytest.fixture
def start_hub(sites: Sites, tmp_path: Path) -> Iterator[StartHub]:
    """Start a hub gateway: local archive ``a`` (unless ``path`` says otherwise) and peers."""
    started: list[Gateway] = []

    def start(
        *items: str,
        local: bool = True,
        env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
    ) -> Hub:
        path = ",".join(([str(sites.roots["a"])] if local else []) + list(items))
        gw = Gateway(
            site_args(sites.roots["a"], *extra, token=HUB_TOKEN, path=path),
            tmp_path / f"hub-{len(started)}.log",
            env if env is not None else peer_env(**hostile_tokens(items)),
        )
        started.append(gw)
        return Hub(gw)

    yield start
    for gw in started:
        gw.stop()


# Hostile peers ---------------------------------------------------------------------------


Responder = Callable[[BaseHTTPRequestHandler], None]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a hub that hangs up on a huge answer is expected here


class HostilePeer:
    """A real HTTP server on loopback that answers searches the way ``respond`` says."""

    def __init__(self, respond: Responder) -> None:
        outer = self
        self.requests: list[dict[str, str]] = []
        """The headers of each search (POST)."""
        self.probes: list[dict[str, str]] = []
        """The path and headers of each GET: a hub's probe of ``/healthz`` at its start, and
        downloads it relays."""

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.requests.append(dict(self.headers.items()))
                respond(self)

            def do_GET(self) -> None:
                outer.probes.append({"path": self.path, **dict(self.headers.items())})
                respond(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def send(handler: BaseHTTPRequestHandler, status: int, body: bytes, **headers: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        handler.send_header(name.replace("_", "-"), value)
    handler.end_headers()
    handler.wfile.write(body)


def json_answer(files: list[dict[str, Any]], **extra: Any) -> bytes:
    return json.dumps({"status": "OK", "callid": "x", "files": files, **extra}).encode()


MakeHostile = Callable[[Responder], "HostilePeer"]
"""The ``hostile`` fixture's type."""


@pytest.fixture
def hostile() -> Iterator[MakeHostile]:
    made: list[HostilePeer] = []

    def make(respond: Responder) -> HostilePeer:
        made.append(HostilePeer(respond))
        return made[-1]

    yield make
    for server in made:
        server.close()


class SilentPeer:
    """Accepts connections and never answers (a hung gateway)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self._stop = True
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent_peer() -> Iterator[SilentPeer]:
    peer = SilentPeer()
    yield peer
    peer.close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def environ_without_peer_tokens() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_PEER_TOKEN_")}
