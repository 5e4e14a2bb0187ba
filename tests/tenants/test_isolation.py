"""A tenant's secret finds that tenant's recordings and nothing else, whatever it sends."""

from __future__ import annotations

import pytest
import requests

from gateway.signing import LinkSigner
from tests.tenants.conftest import ADMIN, LINK_KEY, SECRETS, Hosted, names, search
from tests.web.conftest import Gateway

T1, T2 = "tenant1.example", "tenant2.example"
SHARED = "1772700000.555"


def test_each_tenant_finds_its_own_calls(mt: Gateway, hosted: Hosted) -> None:
    for tenant in (T1, T2):
        call = hosted.call(tenant, 2)
        want = sorted(k.rsplit("/", 1)[1] for k in call.files)
        with_time = search(
            mt,
            tenant=tenant,
            token=SECRETS[tenant],
            callid=call.callid,
            timestamp=call.start.isoformat(),
        )
        assert names(with_time) == want
        # without a timestamp: a full scan, but still only below the tenant's own folder
        assert names(search(mt, tenant=tenant, token=SECRETS[tenant], callid=call.callid)) == want


def test_tenant_in_query_string_as_in_loways_example(mt: Gateway, hosted: Hosted) -> None:
    call = hosted.call(T1)
    answer = requests.post(
        f"{mt.url}/search/?tenant={T1}",
        data={"searchtoken": SECRETS[T1], "callid": call.callid},
        timeout=30,
    )
    assert names(answer) == [call.files[0].rsplit("/", 1)[1]]


def test_the_same_call_id_gives_each_tenant_its_own_file(mt: Gateway) -> None:
    for tenant in (T1, T2):
        answer = search(mt, tenant=tenant, token=SECRETS[tenant], callid=SHARED)
        (f,) = answer.json()["files"]
        assert requests.get(f["url"], timeout=10).content == tenant.encode() * 100


def test_another_tenants_call_id_finds_nothing(mt: Gateway, hosted: Hosted) -> None:
    for victim in (T2, "other.example"):
        call = hosted.call(victim)
        answer = search(
            mt,
            tenant=T1,
            token=SECRETS[T1],
            callid=call.callid,
            timestamp=call.start.isoformat(),
        )
        assert names(answer) == []


@pytest.mark.parametrize(
    "tenant",
    [
        T2,  # another tenant's name with my secret
        "other.example",  # a folder that exists but has no secret
        "unknown.example",
        f"{T1}/../{T2}",
        f"{T1}/..",
        "..",
        ".",
        "*",
        "?",
        f"{T1}%2F..%2F{T2}",
        "%2F",
        "%TE",
        f"{T1}/",
        T1.upper(),
        f"{T1}\\..\\{T2}",
        f"{T1}\x00",
        "",
    ],
)
def test_my_secret_with_any_other_tenant_value_is_refused(mt: Gateway, tenant: str) -> None:
    call_of_t2 = "1772961300.101"
    for fields in (
        {"tenant": tenant, "token": SECRETS[T1], "callid": call_of_t2},
        {"tenant": tenant, "token": SECRETS[T1], "callid": SHARED},
    ):
        answer = search(mt, **fields)
        assert answer.status_code == 401, answer.text
        assert answer.json()["error"] in (
            "unknown tenant or wrong secret",
            "name the tenant (tenant=...) whose secret this is",
        )
        assert SECRETS[T1] not in answer.text


def test_query_string_and_body_name_different_tenants(mt: Gateway) -> None:
    # the body wins, and my secret is not the body tenant's
    answer = requests.post(
        f"{mt.url}/search/?tenant={T1}",
        data={"tenant": T2, "token": SECRETS[T1], "callid": SHARED},
        timeout=10,
    )
    assert answer.status_code == 401
    # the other way round: I name myself in the body, the query string cannot widen it
    answer = requests.post(
        f"{mt.url}/search/?tenant={T2}",
        data={"tenant": T1, "token": SECRETS[T1], "callid": SHARED},
        timeout=10,
    )
    (f,) = answer.json()["files"]
    assert requests.get(f["url"], timeout=10).content == T1.encode() * 100


def test_unknown_tenant_and_wrong_secret_look_the_same(mt: Gateway) -> None:
    unknown = search(mt, tenant="nobody.example", token=SECRETS[T1], callid=SHARED)
    wrong = search(mt, tenant=T1, token=SECRETS[T2], callid=SHARED)
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


@pytest.mark.parametrize("callid", [f"../{T2}/archive/x", "..", "*", "?", "%2F..%2F", "%", "a\\b"])
def test_call_ids_with_path_characters(mt: Gateway, callid: str) -> None:
    answer = search(mt, tenant=T1, token=SECRETS[T1], callid=callid)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        assert answer.json()["files"] == []


def test_no_tenant_field_with_a_tenant_secret(mt: Gateway) -> None:
    answer = search(mt, token=SECRETS[T1], callid=SHARED)
    assert answer.status_code == 401


def test_admin_token_searches_any_tenant(mt: Gateway) -> None:
    for tenant in (T1, T2, "other.example"):
        answer = search(mt, tenant=tenant, token=ADMIN, callid=SHARED)
        (f,) = answer.json()["files"]
        assert requests.get(f["url"], timeout=10).content == tenant.encode() * 100
    # the source pattern needs a tenant: the admin must name one
    answer = search(mt, token=ADMIN, callid=SHARED)
    assert answer.status_code == 400
    assert "%TE" in answer.json()["error"]
    # and what it names is still checked as a folder name
    assert search(mt, tenant="../x", token=ADMIN, callid=SHARED).status_code == 400


def test_links_are_bound_to_their_tenant(mt: Gateway) -> None:
    answer = search(mt, tenant=T1, token=SECRETS[T1], callid=SHARED)
    (mine,) = answer.json()["files"]
    base, signed, name = mine["url"].rsplit("/", 2)
    signer = LinkSigner([LINK_KEY])
    target = signer.verify(signed)  # the test knows the gateway's link key
    source, key = target.source, target.key
    assert target.tenant == T1
    assert key.startswith(f"{T1}/archive/")
    assert T1 not in mine["url"]  # the payload is encrypted: no tenant, no path in the link

    # the name segment is only cosmetic: renaming it never reaches another file
    renamed = requests.get(f"{base}/{signed}/{T2}.wav", timeout=10)
    assert renamed.content == T1.encode() * 100

    # editing the link (its sealed payload or its expiry) breaks the signature
    sealed, expires, mac = signed.rsplit(".", 2)
    flipped = sealed[:-1] + ("A" if sealed[-1] != "A" else "B")
    for forged in (f"{flipped}.{expires}.{mac}", f"{sealed}.{int(expires) + 3600}.{mac}"):
        answer = requests.get(f"{base}/{forged}/{name}", timeout=10)
        assert answer.status_code == 403

    # a correctly signed link whose tenant does not own the key is refused at download time
    # (as if a bug in the search had handed it out): the key must lie below the tenant's %TE
    for key_of_t2 in (key.replace(T1, T2), f"{T1}/../{T2}/archive/2026/03/05/x.wav"):
        token, _ = signer.sign(source, key_of_t2, 60, tenant=T1)
        answer = requests.get(f"{base}/{token}/{name}", timeout=10)
        assert answer.status_code == 403, answer.text
    # the same signer, the tenant's own key: accepted (so the 403 above is the tenant check)
    token, _ = signer.sign(source, key, 60, tenant=T1)
    assert requests.get(f"{base}/{token}/{name}", timeout=10).content == T1.encode() * 100


def test_tenant_folder_names_are_literal(mt: Gateway, hosted: Hosted) -> None:
    """A folder whose name looks like a pattern (``*``, ``%TE``) never widens a search."""
    for odd in ("*", "%TE", "%2F"):
        folder = hosted.root / odd / "archive" / "2026/03/05"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"q-{SHARED}.wav").write_bytes(b"odd" * 10)
    try:
        answer = search(mt, tenant=T1, token=SECRETS[T1], callid=SHARED)
        (f,) = answer.json()["files"]
        assert requests.get(f["url"], timeout=10).content == T1.encode() * 100
    finally:
        for odd in ("*", "%TE", "%2F"):
            (hosted.root / odd / "archive" / "2026/03/05" / f"q-{SHARED}.wav").unlink()
