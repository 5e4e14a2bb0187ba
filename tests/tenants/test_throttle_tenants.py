"""Throttling with tenants: a tenant's failures lock out that tenant from that address only.

A hosted QueueMetrics serves many customers from one outgoing address: one customer whose
secret is wrong (or someone guessing it) must not lock out the others (issue #14's review).
Through real HTTP; the gateway trusts ``X-Forwarded-For`` from 127.0.0.1 (its default
``--trusted-proxy``), so the tests speak for a client address as a reverse proxy does.
"""

from __future__ import annotations

from typing import Any

import requests

from tests.tenants.conftest import ADMIN, SECRETS, Hosted

LIMIT = 10  # the default --auth-failures
HOSTED_QM = "203.0.113.50"


def post(gw: Any, **fields: str) -> requests.Response:
    return requests.post(
        f"{gw.url}/search/", data=fields, headers={"X-Forwarded-For": HOSTED_QM}, timeout=30
    )


def test_one_tenants_wrong_secret_locks_out_that_tenant_only(start: Any, hosted: Hosted) -> None:
    gw = start("--token", ADMIN)
    one, two = sorted(SECRETS)
    call_one, call_two = hosted.call(one), hosted.call(two)
    for n in range(LIMIT):
        wrong = post(gw, tenant=one, secret=f"rotated-{n}-not-yet-in-qm", callid=call_one.callid)
        assert wrong.status_code == 401, wrong.text

    refused = post(gw, tenant=one, secret=SECRETS[one], callid=call_one.callid)
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["Retry-After"]) > 0
    # the other tenant and the admin token, from the very same address, still search
    assert post(gw, tenant=two, secret=SECRETS[two], callid=call_two.callid).status_code == 200
    assert post(gw, token=ADMIN, tenant=two, callid=call_two.callid).status_code == 200

    # guesses that name no configured tenant count together, apart from the tenants'
    for n in range(LIMIT):
        assert post(gw, token=f"guess-{n}", callid=call_two.callid).status_code == 401
    assert post(gw, token=ADMIN, callid=call_two.callid).status_code == 429
    # a request naming a tenant counts as that tenant's (bounded by the address's cap below)
    assert post(gw, token=ADMIN, tenant=two, callid=call_two.callid).status_code == 200
    assert post(gw, tenant=two, secret=SECRETS[two], callid=call_two.callid).status_code == 200
    assert "throttled" in gw.log()


def test_naming_tenant_after_tenant_buys_no_more_than_the_address_cap(
    start: Any, hosted: Hosted, tmp_path: Any
) -> None:
    from tests.tenants.conftest import write_tenants

    many = {f"t{n}.example": f"secret-{n:02d}-abcdefgh" for n in range(12)}
    gw = start("--token", ADMIN, tenants=write_tenants(tmp_path / "many.json", many))
    callid = hosted.call(sorted(SECRETS)[0]).callid
    answers = []
    for tenant in many:  # 12 tenants x 10 guesses = 120, over the address's 100
        for n in range(LIMIT):
            answers.append(post(gw, tenant=tenant, secret=f"guess-{n}", callid=callid).status_code)
    assert answers.count(401) == LIMIT * 10  # the address as a whole: ten times the limit
    assert set(answers[LIMIT * 10 :]) == {429}
