"""Operating the gateway: audit log, metrics, `gateway check`, where the token comes from."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from gateway.placeholders import MONTHS
from tests.conftest import free_port, run_gateway
from tests.web.conftest import TOKEN, TZ, Archive

METRICS_TOKEN = "metrics-7a1c44e0-scraper"


def audit_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_audit_log_has_every_search_and_download_and_no_secret(
    start_gateway: Any, archive: Archive, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    gw = start_gateway("--audit-log", str(audit))
    call = archive.call_with(1)
    [link] = gw.links(call)
    assert requests.get(link["url"], headers={"Range": "bytes=0-99"}, timeout=10).status_code == 206
    assert requests.head(link["url"], timeout=10).status_code == 200  # probing leaves a trace
    fields = {"token": "wrong", "callid": "1.1", "tenant": "acme.example"}
    requests.post(f"{gw.url}/search/", data=fields, timeout=10)
    gw.stop()
    search, download, head, refused = audit_lines(audit)
    assert search["event"] == "search"
    assert search["callid"] == call.callid
    assert search["results"] == 1
    assert search["status"] == 200
    assert search["client"] == "127.0.0.1"
    assert download["event"] == "download"
    assert download["file"] == call.files[0]
    assert download["range"] == "bytes=0-99"
    assert download["bytes"] == 100
    assert download["status"] == 206
    assert download["method"] == "GET"
    assert head["event"] == "download"
    assert head["method"] == "HEAD"
    assert head["file"] == call.files[0]
    assert head["status"] == 200
    assert head["bytes"] == 0
    assert refused["status"] == 401
    assert refused["tenant"] == "acme.example"  # whom the guess was aimed at
    text = audit.read_text()
    signed = link["url"].split("/files/", 1)[1].split("/", 1)[0]
    assert TOKEN not in text
    assert "wrong" not in text
    assert signed not in text


def test_metrics_need_their_token_and_count_requests(
    start_gateway: Any, archive: Archive, tmp_path: Path
) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text(METRICS_TOKEN + "\n")
    gw = start_gateway("--metrics-token-file", str(token_file))
    call = archive.call_with(2)
    for link in gw.links(call):
        assert requests.get(link["url"], timeout=10).ok
    metrics_url = f"{gw.url}/metrics"
    assert requests.get(metrics_url, timeout=10).status_code == 401
    wrong = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(metrics_url, headers=wrong, timeout=10).status_code == 401
    good = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    answer = requests.get(metrics_url, headers=good, timeout=10)
    assert answer.status_code == 200
    text = answer.text
    assert 'gateway_requests_total{route="/search",status="200"} 1.0' in text
    assert 'gateway_requests_total{route="/files",status="200"} 2.0' in text
    total = sum((archive.root / key).stat().st_size for key in call.files)
    assert f"gateway_bytes_streamed_total {float(total)}" in text
    assert "gateway_active_streams 0.0" in text
    assert 'gateway_search_seconds_count{source="file:' in text


def test_the_metrics_token_must_not_be_the_search_token(archive: Archive, tmp_path: Path) -> None:
    token_file = tmp_path / "metrics-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    done = check("--path", str(archive.root), "--token", TOKEN,
                 "--metrics-token-file", str(token_file))  # fmt: skip
    assert done.returncode == 2, done.stdout
    assert b"the metrics token is the search token" in done.stderr
    assert TOKEN.encode() not in done.stdout + done.stderr


def test_a_short_token_works_with_a_warning(start_gateway: Any, archive: Archive) -> None:
    gw = start_gateway(token="Sup3rZ3brA")  # QueueMetrics' own example token: 10 characters
    call = archive.call_with(1)
    assert gw.search(callid=call.callid, timestamp=call.start, token="Sup3rZ3brA").ok
    assert "the search token is shorter than 16 characters" in gw.log()
    assert "Sup3rZ3brA" not in gw.log()


@pytest.mark.parametrize("mode", [0o666, 0o620])
def test_a_token_file_others_may_write_is_refused(
    archive: Archive, tmp_path: Path, mode: int
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(mode)
    done = check("--path", str(archive.root), "--token-file", str(token_file))
    assert done.returncode == 2, done.stdout
    assert f"may be written by others (mode {mode:04o})".encode() in done.stderr
    assert TOKEN.encode() not in done.stdout + done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user takes root")
def test_a_token_file_of_another_user_is_refused(archive: Archive, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    os.chown(token_file, 65534, 65534)  # nobody: could chmod and rewrite it at any time
    done = check("--path", str(archive.root), "--token-file", str(token_file))
    assert done.returncode == 2, done.stdout
    assert b"belongs to another user (uid 65534)" in done.stderr


def test_a_token_file_others_may_read_is_used_with_a_warning(
    archive: Archive, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    done = check("--path", str(archive.root), "--token-file", str(token_file))
    assert done.returncode == 0, done.stderr
    assert b"may be read by any user (mode 0644)" in done.stderr
    token_file.chmod(0o640)
    done = check("--path", str(archive.root), "--token-file", str(token_file))
    assert done.returncode == 0, done.stderr
    assert b"may be read" not in done.stderr


def test_without_a_metrics_token_metrics_are_off(gw: Any) -> None:
    answer = requests.get(f"{gw.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=10)  # fmt: skip
    assert answer.status_code == 404
    assert "metrics are off" in answer.json()["error"]


def test_flag_beats_environment_beats_configuration_file(
    start_gateway: Any, archive: Archive, tmp_path: Path
) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('token = "from-the-file"\n')
    call = archive.call_with(1)

    def works_with(gateway: Any, token: str) -> bool:
        answer = gateway.search(callid=call.callid, token=token)
        return bool(answer.status_code == 200)

    from_file = start_gateway("--config", str(config), token=None)
    assert works_with(from_file, "from-the-file")
    from_env = start_gateway(
        "--config", str(config), token=None, env={"GATEWAY_TOKEN": "from-the-env"}
    )
    assert works_with(from_env, "from-the-env")
    assert not works_with(from_env, "from-the-file")
    from_flag = start_gateway("--config", str(config), env={"GATEWAY_TOKEN": "from-the-env"})
    assert works_with(from_flag, TOKEN)
    assert not works_with(from_flag, "from-the-env")


def check(*args: str, **env: str) -> Any:
    return run_gateway("check", "--timezone", TZ, "--bind-to", f"127.0.0.1:{free_port()}", *args,
                       env=env)  # fmt: skip


def test_check_reports_each_source_and_succeeds(archive: Archive) -> None:
    done = check("--path", f"{archive.root}/%YY/%MM/%DD,{archive.root}", "--token", TOKEN)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    assert "source 1: file:" in out
    assert "source 2: file:" in out
    assert out.count("reachable") == 2
    assert "today:" in out
    assert "configuration OK" in out
    assert TOKEN not in out


def test_check_fails_with_status_3_for_an_unreachable_source(archive: Archive) -> None:
    down = f"smb://rec@127.0.0.1:{free_port()}/calls"
    done = check("--path", f"{archive.root},{down}", "--token", TOKEN,
                 GATEWAY_SMB_PASSWORD="pw-never-shown")  # fmt: skip
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 3
    assert "UNREACHABLE" in out
    assert "pw-never-shown" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--path", "{root}"], b"no token"),
        (["--path", "{root}/missing", "--token", TOKEN], b"does not exist"),
        (["--path", "{root}", "--token", TOKEN, "--link-key-file", "/nonexistent"], b"link key"),
        (
            ["--path", "{root}", "--token", TOKEN, "--audit-log", "/nonexistent/dir/audit.log"],
            b"cannot open the audit log /nonexistent/dir/audit.log",
        ),
    ],
)
def test_check_fails_with_status_2_for_bad_configuration(
    archive: Archive, args: list[str], message: bytes
) -> None:
    done = check(*[a.replace("{root}", str(archive.root)) for a in args])
    assert done.returncode == 2
    assert message in done.stderr
    assert b"Traceback" not in done.stderr


def test_the_logged_client_is_the_proxy_given_address_and_nothing_else(
    start_gateway: Any, archive: Archive, tmp_path: Path
) -> None:
    audit = tmp_path / "audit.jsonl"
    gw = start_gateway("--audit-log", str(audit))  # trusts X-Forwarded-For from 127.0.0.1
    call = archive.call_with(1)
    for forwarded in ("203.0.113.7", "<script> 1.2.3.4 200 fake-line"):
        gw_answer = requests.post(
            f"{gw.url}/search/",
            data={"token": TOKEN, "callid": call.callid},
            headers={"X-Forwarded-For": forwarded},
            timeout=10,
        )
        assert gw_answer.status_code == 200
    gw.stop()
    clients = [line["client"] for line in audit_lines(audit)]
    assert clients == ["203.0.113.7", "-"]
    assert "<script>" not in gw.log()


def test_check_expands_the_domains_of_the_fusionpbx_layout(tmp_path: Path) -> None:
    today = datetime.now(ZoneInfo(TZ))
    day = f"{today.year}/{MONTHS[today.month - 1]}/{today.day:02d}"
    folder = tmp_path / "acme.example" / "archive" / day
    folder.mkdir(parents=True)
    (folder / "0b4a6a36-1111.wav").write_bytes(b"RIFF")
    done = check("--path", str(tmp_path), "--layout", "fusionpbx", "--token", TOKEN)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    assert f"today: acme.example/archive/{day} holds 1 entries" in out
