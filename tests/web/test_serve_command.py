"""`gateway serve` start-up: token sources, refusals, clean stop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import run_gateway
from tests.web.conftest import TOKEN, Archive, serve_args


def test_refuses_to_start_without_a_token(archive: Archive) -> None:
    env = {"GATEWAY_TOKEN": ""}
    result = run_gateway("serve", *serve_args(archive, token=None), env=env, timeout=30)
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "no token" in err
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_token_from_file_and_environment(
    start_gateway: Any, tmp_path: Path, archive: Archive
) -> None:
    call = archive.call_with(1)
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    by_file = start_gateway(
        "--token-file", str(token_file), token=None, env={"GATEWAY_TOKEN": "from-env"}
    )
    assert "from-the-file" not in by_file.banner
    fields = {"callid": call.callid, "timestamp": call.start}
    assert requests.post(
        f"{by_file.url}/search/", data={**fields, "token": "from-the-file"}, timeout=10
    ).ok
    assert (
        requests.post(
            f"{by_file.url}/search/", data={**fields, "token": "from-env"}, timeout=10
        ).status_code
        == 401
    )

    by_env = start_gateway(token=None, env={"GATEWAY_TOKEN": "from-env"})
    assert requests.post(
        f"{by_env.url}/search/", data={**fields, "token": "from-env"}, timeout=10
    ).ok

    by_flag = start_gateway("--token-file", str(token_file), env={"GATEWAY_TOKEN": "from-env"})
    assert requests.post(f"{by_flag.url}/search/", data={**fields, "token": TOKEN}, timeout=10).ok


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--link-key-file", "/nonexistent/keys"], "cannot read the link key file"),
        (["--bind-to", "nonsense"], "--bind-to takes HOST:PORT"),
        (["--public-url", "ftp://x"], "--public-url takes"),
        # any client could choose the address it is audited and throttled under
        (["--trusted-proxy", "*"], "--trusted-proxy '*' would believe any client"),
    ],
)
def test_bad_options_exit_2(archive: Archive, extra: list[str], message: str) -> None:
    result = run_gateway("serve", *serve_args(archive, *extra), timeout=30)
    assert result.returncode == 2
    assert message in result.stderr.decode()


def test_short_link_keys_are_refused_without_quoting_them(archive: Archive, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# comment\nshort-secret-key\n")
    result = run_gateway("serve", *serve_args(archive, "--link-key-file", str(keys)), timeout=30)
    assert result.returncode == 2
    assert "line 2" in result.stderr.decode()
    assert "short-secret-key" not in result.stderr.decode()


def test_missing_source_folder_is_a_configuration_error(tmp_path: Path) -> None:
    archive = Archive(tmp_path / "missing", [])
    result = run_gateway("serve", *serve_args(archive), timeout=30)
    assert result.returncode == 2
    assert "does not exist" in result.stderr.decode()


def test_banner_and_clean_stop(start_gateway: Any, archive: Archive) -> None:
    gw = start_gateway("--public-url", "https://audiovault.example.com/av")
    assert str(archive.root) in gw.banner
    assert "freepbx" in gw.banner
    assert TOKEN not in gw.banner
    call = archive.call_with(1)
    (found,) = gw.links(call)
    assert found["url"].startswith("https://audiovault.example.com/av/files/")
    assert gw.stop() == 0
    assert "stopped" in gw.tail
