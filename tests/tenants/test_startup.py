"""``--tenants`` is checked strictly at start: clear errors that name the tenant, never a secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_gateway
from tests.tenants.conftest import ADMIN, SECRETS, Hosted, names, search, tenant_args
from tests.web.conftest import Gateway

GOOD = {"tenant": "tenant1.example", "secret": "s3cret-one-9f2a", "note": "x"}


def serve_fails(hosted: Hosted, tmp_path: Path, content: object, *extra: str) -> str:
    path = tmp_path / "tenants.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    path.chmod(0o600)
    result = run_gateway("serve", *tenant_args(hosted, path, *extra), timeout=30)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == b""
    *warnings, error = result.stderr.decode().splitlines()
    assert error.startswith("gateway: error: "), error  # one line, no traceback
    assert all(line.startswith("gateway: warning: ") for line in warnings), warnings
    return error


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[{", "is not valid JSON"),
        ({"tenant": "a"}, "must hold a JSON array"),
        (["tenant1.example"], "tenant #1: each tenant must be an object"),
        ([{"secret": "long-enough-1"}], 'tenant #1: "tenant" must be a non-empty string'),
        ([{"tenant": "a/b", "secret": "long-enough-1"}], "tenant 'a/b': a tenant name must be"),
        ([{"tenant": "..", "secret": "long-enough-1"}], "tenant '..': a tenant name must be"),
        ([{"tenant": "a*", "secret": "long-enough-1"}], "tenant 'a*': a tenant name must be"),
        ([{"tenant": "a%2F", "secret": "long-enough-1"}], "a tenant name must be"),
        ([{"tenant": "t", "secret": ""}], "tenant 't': \"secret\" must be a non-empty string"),
        ([{"tenant": "t", "secret": "short"}], "tenant 't': the secret must be at least 8"),
        ([{"tenant": "t", "secret": " padded-secret "}], "starts or ends with white space"),
        ([{"tenant": "t", "secret": 12345678}], '"secret" must be a non-empty string'),
        ([{"tenant": "t", "secret": "long-enough-1", "secert": 1}], "unknown key(s) 'secert'"),
        ([{"tenant": "t", "secret": "long-enough-1", "note": 5}], '"note" must be a string'),
        ([GOOD, {**GOOD, "secret": "other-secret-1"}], "'tenant1.example' is listed already"),
        (
            [GOOD, {**GOOD, "tenant": "TENANT1.example", "secret": "other-secret-1"}],
            "tenant 'TENANT1.example': the tenant 'tenant1.example' is listed already",
        ),
        (
            [GOOD, {**GOOD, "tenant": "tenant2.example"}],
            "tenant 'tenant2.example': the secret is the same as tenant 'tenant1.example'",
        ),
    ],
)
def test_bad_tenants_files(hosted: Hosted, tmp_path: Path, content: object, message: str) -> None:
    error = serve_fails(hosted, tmp_path, content)
    assert message in error
    for secret in ("long-enough-1", "s3cret-one-9f2a", "other-secret-1", "short", "padded"):
        assert secret not in error


def test_missing_tenants_file(hosted: Hosted, tmp_path: Path) -> None:
    result = run_gateway("serve", *tenant_args(hosted, tmp_path / "nope.json"), timeout=30)
    assert result.returncode == 2
    assert b"no tenants file" in result.stderr


def test_admin_token_cannot_be_a_tenant_secret(hosted: Hosted, tmp_path: Path) -> None:
    error = serve_fails(hosted, tmp_path, [GOOD], "--token", GOOD["secret"])
    assert "tenant 'tenant1.example': its secret is the admin token" in error
    assert GOOD["secret"] not in error


def test_the_metrics_token_cannot_be_a_tenant_secret(hosted: Hosted, tmp_path: Path) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text(GOOD["secret"])
    token_file.chmod(0o600)
    # the scraper could otherwise search as that tenant
    error = serve_fails(hosted, tmp_path, [GOOD], "--metrics-token-file", str(token_file))
    assert "tenant 'tenant1.example': its secret is the metrics token" in error
    assert GOOD["secret"] not in error


@pytest.mark.parametrize("pattern", ["", "%YY/%MM/%DD", "archive/%YY"])
def test_every_source_must_use_te(hosted: Hosted, tmp_path: Path, pattern: str) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps([GOOD]))
    args = tenant_args(hosted, path, pattern=pattern)
    result = run_gateway("serve", *args, timeout=30)
    assert result.returncode == 2
    assert b"with --tenants, every source must keep each tenant's recordings below %TE" in (
        result.stderr
    )
    # a second source without %TE is refused too, even when the first has it
    args[1] = f"file:{hosted.root}/%TE/archive/%YY/%MM/%DD,file:{hosted.root}"
    result = run_gateway("serve", *args, timeout=30)
    assert result.returncode == 2
    assert b"below %TE" in result.stderr


def test_fusionpbx_layout_counts_as_te(hosted: Hosted, tmp_path: Path) -> None:
    path = tmp_path / "tenants.json"
    path.write_text(json.dumps([GOOD]))
    args = tenant_args(hosted, path, "--layout", "fusionpbx", pattern="")
    gw = Gateway(args, tmp_path / "gw.log")
    try:
        assert gw.banner.startswith("gateway: serving on")
    finally:
        gw.stop()


def test_no_token_needed_with_tenants(start: object, hosted: Hosted) -> None:
    gw = start()  # type: ignore[operator]
    call = hosted.call("tenant1.example")
    answer = search(
        gw, tenant="tenant1.example", token=SECRETS["tenant1.example"], callid=call.callid
    )
    assert names(answer) == [call.files[0].rsplit("/", 1)[1]]
    # there is no admin token: a made-up one does nothing
    assert search(gw, token=ADMIN, callid=call.callid).status_code == 401
    assert "SIGHUP re-reads the tenants file" in gw.log()
    assert SECRETS["tenant1.example"] not in gw.log()


def test_tenants_key_in_the_config_file(hosted: Hosted, tmp_path: Path, tenants_file: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'path = "file:{hosted.root}/%TE/archive/%YY/%MM/%DD"\ntimezone = "UTC"\n'
        f'bind_to = "127.0.0.1:0"\ntenants = "{tenants_file}"\n'
    )
    gw = Gateway(["--config", str(config)], tmp_path / "gw.log")
    try:
        answer = search(
            gw, tenant="tenant2.example", token=SECRETS["tenant2.example"], callid="1772700000.555"
        )
        assert len(answer.json()["files"]) == 1
    finally:
        gw.stop()
