"""A source that cannot be reached never hides what the other sources find."""

from __future__ import annotations

from typing import Any

import requests

from tests.conftest import free_port, run_gateway
from tests.web.conftest import TOKEN, TZ, Archive

ENV = {"GATEWAY_SMB_PASSWORD": "not-used-nothing-listens"}


def down_then_archive(archive: Archive) -> str:
    # nothing listens on this loopback port: the SMB store is refused at once
    return f"smb://rec@127.0.0.1:{free_port()}/calls,{archive.root}"


def test_search_finds_in_a_later_source_and_names_the_one_that_failed(
    start_gateway: Any, archive: Archive
) -> None:
    gw = start_gateway("--path", down_then_archive(archive), env=ENV)
    call = archive.call_with(2)
    answer = gw.search(callid=call.callid, timestamp=call.start)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert sorted(f["name"] for f in body["files"]) == sorted(
        k.rsplit("/", 1)[1] for k in call.files
    )
    [error] = body["errors"]
    assert "smb://rec@127.0.0.1" in error["error"]
    assert ENV["GATEWAY_SMB_PASSWORD"] not in answer.text


def test_nothing_found_while_a_source_is_down_is_503(start_gateway: Any, archive: Archive) -> None:
    gw = start_gateway("--path", down_then_archive(archive), env=ENV)
    answer = gw.search(callid="1234567890.999")
    assert answer.status_code == 503
    assert answer.json()["status"] == "ERROR"
    assert "smb://rec@127.0.0.1" in answer.json()["error"]
    assert requests.get(f"{gw.url}/healthz", timeout=10).ok


def test_command_line_warns_and_still_finds(archive: Archive) -> None:
    call = archive.call_with(1)
    args = ["search", "--path", down_then_archive(archive), "--layout", "freepbx",
            "--timezone", TZ, "--callid", call.callid, "--timestamp", call.start]  # fmt: skip
    done = run_gateway(*args, env=ENV)
    assert done.returncode == 0, done.stderr
    assert b"warning" in done.stderr
    assert b"smb://rec@127.0.0.1" in done.stderr
    missing = run_gateway(*args[:-4], "--callid", "1234567890.999", env=ENV)
    assert missing.returncode == 3
    assert ENV["GATEWAY_SMB_PASSWORD"].encode() not in missing.stderr


def test_token_is_still_checked_first(start_gateway: Any, archive: Archive) -> None:
    gw = start_gateway("--path", down_then_archive(archive), env=ENV)
    answer = requests.post(
        f"{gw.url}/search/", data={"token": TOKEN + "x", "callid": "1.1"}, timeout=10
    )
    assert answer.status_code == 401
