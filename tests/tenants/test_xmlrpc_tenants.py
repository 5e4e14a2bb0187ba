"""XML-RPC with tenants: the tenant and its secret in the configured URL's query string."""

from __future__ import annotations

import xmlrpc.client
from collections.abc import Callable

import pytest
import requests

from tests.tenants.conftest import ADMIN, SECRETS, Hosted
from tests.web.conftest import Gateway

T1, T2 = "tenant1.example", "tenant2.example"
SHARED = "1772700000.555"


def find(url: str, callid: str) -> list[object]:
    answer: list[object] = xmlrpc.client.ServerProxy(url).QMAudio.findStoredFile(
        "", callid, "1", "admin"
    )
    return answer


def test_tenant_and_secret_in_the_url(start: Callable[..., Gateway], hosted: Hosted) -> None:
    gw = start("--token", ADMIN)
    for tenant in (T1, T2):
        url = f"{gw.url}/xmlrpc?tenant={tenant}&secret={SECRETS[tenant]}"
        found, link, *_ = find(url, SHARED)
        assert found is True
        assert isinstance(link, str)
        assert requests.get(link, timeout=10).content == tenant.encode() * 100
        # another tenant's call: not found, even without a timestamp (full scan of my folder)
        other = hosted.call(T2 if tenant == T1 else T1)
        assert find(url, other.callid)[0] is False
    # my own multi-file call
    call = hosted.call(T1, 2)
    found, link, *_ = find(f"{gw.url}/RPC2?tenant={T1}&searchtoken={SECRETS[T1]}", call.callid)
    assert found is True
    assert isinstance(link, str)
    assert link.startswith("MULTI:")
    # the admin token names the tenant in the URL
    found, link, *_ = find(f"{gw.url}/xmlrpc?token={ADMIN}&tenant={T2}", SHARED)
    assert isinstance(link, str)
    assert requests.get(link, timeout=10).content == T2.encode() * 100


@pytest.mark.parametrize(
    "query",
    [
        f"tenant={T2}&secret={SECRETS[T1]}",
        f"tenant={T1}%2F..%2F{T2}&secret={SECRETS[T1]}",
        f"tenant=..&secret={SECRETS[T1]}",
        f"tenant=*&secret={SECRETS[T1]}",
        f"secret={SECRETS[T1]}",
        f"tenant={T1}",
        f"tenant=unknown.example&secret={SECRETS[T1]}",
        "",
    ],
)
def test_refused_with_401(start: Callable[..., Gateway], query: str) -> None:
    gw = start()
    with pytest.raises(xmlrpc.client.ProtocolError) as caught:
        find(f"{gw.url}/xmlrpc?{query}", SHARED)
    assert caught.value.errcode == 401
