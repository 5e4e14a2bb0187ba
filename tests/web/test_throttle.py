"""Failed authentication is throttled per client address (``gateway.web.throttle``).

Through real HTTP: the gateway trusts ``X-Forwarded-For`` from 127.0.0.1 (its default
``--trusted-proxy``), so the tests speak for several client addresses, as a reverse proxy does.
"""

from __future__ import annotations

import json
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.web.throttle import FailureCounter, client_key
from tests.conftest import FakeClock, wait_until
from tests.web.conftest import TOKEN, Archive

LIMIT = 10  # the default: gateway.configuration.DEFAULT_AUTH_FAILURES
METRICS_TOKEN = "metrics-0b7e41d2-throttle"


def post(url: str, client: str, **fields: str) -> requests.Response:
    return requests.post(
        f"{url}/search/", data=fields, headers={"X-Forwarded-For": client}, timeout=10
    )


def metric(text: str, name: str) -> float:
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_guessing_is_throttled_for_that_address_only(
    start_gateway: Any, archive: Archive, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    metrics_file = tmp_path / "metrics-token"
    metrics_file.write_text(METRICS_TOKEN)
    metrics_file.chmod(0o600)
    gw = start_gateway("--audit-log", str(audit), "--metrics-token-file", str(metrics_file))
    call = archive.call_with(1)
    guesser, other = "203.0.113.7", "198.51.100.20"
    search = {"callid": call.callid, "timestamp": call.start}
    [link] = gw.links(call)  # a link handed out before the guessing starts

    for n in range(LIMIT):
        answer = post(gw.url, guesser, token=f"guess-{n}", tenant="acme.example", **search)
        assert answer.status_code == 401, answer.text

    # now even the right token is refused, on every route that takes it, with a JSON error
    # and Retry-After
    refused = post(gw.url, guesser, token=TOKEN, **search)
    assert refused.status_code == 429, refused.text
    assert refused.json()["status"] == "ERROR"
    assert 50 <= int(refused.headers["Retry-After"]) <= 60
    assert TOKEN not in refused.text
    health = requests.get(f"{gw.url}/healthz", headers={"X-Forwarded-For": guesser}, timeout=10)
    assert health.status_code == 200  # takes no credential
    rpc = xmlrpc.client.ServerProxy(
        f"{gw.url}/xmlrpc?token={TOKEN}", headers=[("X-Forwarded-For", guesser)]
    )
    with pytest.raises(xmlrpc.client.ProtocolError) as caught:
        rpc.QMAudio.findStoredFile("", call.callid, "1", "admin")
    assert caught.value.errcode == 429
    # a link is a credential of its own: it still plays from that address
    download = requests.get(link["url"], headers={"X-Forwarded-For": guesser}, timeout=10)
    assert download.status_code == 200

    # another address is untouched, and so is an IPv6 client
    assert post(gw.url, other, token=TOKEN, **search).status_code == 200
    assert post(gw.url, "2001:db8::1", token=TOKEN, **search).status_code == 200

    scrape = requests.get(
        f"{gw.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert scrape.status_code == 200
    assert metric(scrape.text, 'gateway_auth_failures_total{route="/search"}') == LIMIT
    assert metric(scrape.text, "gateway_auth_blocked_total") == 1
    assert metric(scrape.text, 'gateway_requests_total{route="/search",status="429"}') == 1

    def audited() -> list[dict[str, Any]]:
        return [json.loads(line) for line in audit.read_text().splitlines()]

    lines = wait_until(lambda: len(audited()) >= LIMIT + 6 and audited(), what="audit lines")
    guesses = [line for line in lines if line["status"] == 401]
    assert len(guesses) == LIMIT
    assert {(g["client"], g["tenant"], g["event"]) for g in guesses} == {
        (guesser, "acme.example", "search")
    }
    assert [line["client"] for line in lines if line["status"] == 429] == [guesser, guesser]
    assert TOKEN not in audit.read_text()


def test_an_ipv6_client_counts_by_its_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("::ffff:192.0.2.1") == client_key("192.0.2.1") == "192.0.2.1"
    assert client_key("192.0.2.1") != client_key("192.0.2.2")
    assert client_key("-") == "-"


def test_a_moving_window_of_failures() -> None:
    clock = FakeClock()
    counter = FailureCounter(3, 60, clock=clock)
    assert not counter.failed("a")
    clock.now += 30
    assert not counter.failed("a")
    assert counter.retry_after("a") is None
    assert counter.failed("a")  # the third within a minute
    assert counter.retry_after("a") == 30  # until the first one is a minute old
    assert counter.retry_after("b") is None
    clock.now += 30
    assert counter.retry_after("a") is None  # one more guess allowed...
    counter.failed("a")
    assert counter.retry_after("a") == 30  # ...then blocked again
    clock.now += 61
    assert counter.retry_after("a") is None
    assert len(counter) == 0  # forgotten a window after its last failure


def test_a_spray_of_addresses_keeps_memory_bounded() -> None:
    counter = FailureCounter(3, 60, max_clients=1000, clock=FakeClock())
    for n in range(20_000):
        counter.failed(f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}")
    assert len(counter) == 1000
