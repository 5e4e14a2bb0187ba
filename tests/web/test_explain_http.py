"""``explain=1`` on ``/search/`` (the administrator's token only), and the sources' state on the
landing page (the administrator's token only), over real HTTP against ``gateway serve``; and a
federated peer explained by ``gateway search --explain``."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests

from tests.conftest import GATEWAY, free_port, write
from tests.tenants.conftest import write_tenants
from tests.web.conftest import TOKEN, TZ, Archive, Gateway

START = datetime(2026, 3, 9, 14, 47, 5, tzinfo=ZoneInfo(TZ))
CALLID = f"{int(START.timestamp())}.111"
NAME = f"in-200-100-20260309-144705-{CALLID}.wav"
WHEN = "2026-03-09.14:47:05"
SMB_ENV = {"GATEWAY_SMB_PASSWORD": "not-used-nothing-listens"}


def wrong_day(root: Path) -> Archive:
    """The call filed under the day before its own."""
    write(root / "2026/03/08" / NAME)
    write(root / "2026/03/09/in-200-100-20260309-090000-1773043200.7.wav")
    return Archive(root, [])


def test_explain_with_the_admin_token_names_the_wrong_day_folder(
    start_gateway: Any, tmp_path: Path
) -> None:
    gw: Gateway = start_gateway(root=wrong_day(tmp_path / "rec"))
    plain = gw.search(callid=CALLID, timestamp=WHEN)
    assert plain.status_code == 200, plain.text
    assert "explain" not in plain.json()  # only when asked

    answer = gw.search(callid=CALLID, timestamp=WHEN, explain="1")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["files"] == []
    assert body["status"] == "OK"
    explain = body["explain"]
    assert explain["days"] == ["2026-03-09"]
    assert explain["timezone"] == TZ
    (source,) = explain["sources"]
    assert source["source"] == f"file:{tmp_path / 'rec'}"
    assert source["results"] == 0
    folders = {f["folder"]: f for f in source["folders"]}
    assert folders["2026/03/09"]["outside_window"] is False
    assert folders["2026/03/09"]["names"] == 1
    assert folders["2026/03/08"]["outside_window"] is True
    assert folders["2026/03/08"]["near_misses"] == [
        {"key": f"2026/03/08/{NAME}", "why": "the call's file, outside the search window"}
    ]
    assert folders["2026/03/10"]["missing"] is True
    assert all(isinstance(f["ms"], float) for f in folders.values())


def test_explain_is_refused_to_a_tenant_and_names_nothing(tmp_path: Path) -> None:
    """A tenant's secret with explain=1 is 403: the explanation would name other tenants'
    folders (a wildcard over tenants, near misses). Nothing of the archive is in the answer."""
    root = tmp_path / "hosted"
    write(root / "tenant1.example/archive/2026/03/09" / NAME)
    write(root / "tenant2.example/archive/2026/03/09/in-200-100-20260309-144705-1773064025.9.wav")
    tenants = write_tenants(tmp_path / "tenants.json", {"tenant1.example": "s3cret-one-9f2a"})
    args = ["--path", f"file:{root}/%TE/archive/%YY/%MM/%DD", "--timezone", TZ, "--bind-to",
            "127.0.0.1:0", "--tenants", str(tenants), "--token", TOKEN]  # fmt: skip
    gw = Gateway(args, tmp_path / "gateway.log")
    try:
        fields = {"callid": CALLID, "timestamp": WHEN, "tenant": "tenant1.example"}
        url = f"{gw.url}/search/"
        secret = {"secret": "s3cret-one-9f2a"}
        refused = requests.post(url, data={**fields, **secret, "explain": "1"}, timeout=10)
        assert refused.status_code == 403, refused.text
        assert refused.json() == {
            "status": "ERROR",
            "error": "explain=1 needs the administrator's token",
        }
        assert "tenant2" not in refused.text
        # the same tenant without explain searches as always; the admin token may explain
        normal = requests.post(url, data={**fields, **secret}, timeout=10)
        assert [f["name"] for f in normal.json()["files"]] == [NAME]
        admin = requests.post(url, data={**fields, "token": TOKEN, "explain": "1"}, timeout=10)
        assert admin.status_code == 200, admin.text
        assert admin.json()["explain"]["sources"][0]["results"] == 1
    finally:
        gw.stop()


def test_a_wrong_explain_value_is_400(gw: Gateway, archive: Archive) -> None:
    call = archive.call_with(1)
    answer = gw.search(callid=call.callid, timestamp=call.start, explain="maybe")
    assert answer.status_code == 400
    assert answer.json() == {"status": "ERROR", "error": "explain must be 1 or 0"}
    assert "explain" not in gw.search(callid=call.callid, timestamp=call.start, explain="0").json()


def test_a_json_body_may_ask_with_a_boolean(gw: Gateway, archive: Archive) -> None:
    call = archive.call_with(1)
    for value, explained in ((True, True), (False, False)):
        body = {"token": TOKEN, "callid": call.callid, "timestamp": call.start, "explain": value}
        answer = requests.post(f"{gw.url}/search/", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        assert ("explain" in answer.json()) is explained


def test_a_failed_search_is_explained_too(start_gateway: Any, tmp_path: Path) -> None:
    down = f"smb://rec@127.0.0.1:{free_port()}/calls"
    gw: Gateway = start_gateway("--path", down, env=SMB_ENV, root=wrong_day(tmp_path / "rec"))
    answer = gw.search(callid=CALLID, timestamp=WHEN, explain="1")
    assert answer.status_code == 503, answer.text
    body = answer.json()
    assert body["status"] == "ERROR"
    (source,) = body["explain"]["sources"]
    assert source["source"] == f"smb://rec@127.0.0.1:{down.rsplit(':', 1)[1]}"
    assert "smb://rec@127.0.0.1" in source["error"]
    assert SMB_ENV["GATEWAY_SMB_PASSWORD"] not in answer.text


def test_the_landing_page_shows_source_states_to_the_admin_only(
    start_gateway: Any, archive: Archive
) -> None:
    down = f"smb://rec@127.0.0.1:{free_port()}/calls"
    gw: Gateway = start_gateway("--path", f"{down},{archive.root}", env=SMB_ENV)
    page = requests.get(f"{gw.url}/", timeout=10)
    assert page.status_code == 200
    assert "Serving 2 sources" in page.text
    assert str(archive.root) not in page.text
    assert "127.0.0.1" not in page.text.replace(gw.url, "")

    bearer = {"Authorization": f"Bearer {TOKEN}"}
    before = requests.get(f"{gw.url}/", headers=bearer, timeout=10).text
    assert f"<td>file:{archive.root}</td><td>not searched since the start</td><td>none</td>" in (
        before
    )

    call = archive.call_with(1)
    assert gw.search(callid=call.callid, timestamp=call.start).status_code == 200
    after = requests.get(f"{gw.url}/", headers=bearer, timeout=10).text
    assert f"<td>file:{archive.root}</td><td>reachable at the last search, 20" in after
    smb_row = next(line for line in after.splitlines() if "<td>smb://rec@127.0.0.1" in line)
    assert "<td>FAILING at the last search, 20" in smb_row
    assert "smb://rec@127.0.0.1" in smb_row.split("</td><td>")[2]  # the last error, and when
    assert SMB_ENV["GATEWAY_SMB_PASSWORD"] not in after

    wrong = requests.get(f"{gw.url}/", headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert wrong.status_code == 401
    assert "smb://" not in wrong.text
    # a token in the address (kept in browser history) shows nothing more
    in_address = requests.get(f"{gw.url}/", params={"token": TOKEN}, timeout=10)
    assert in_address.status_code == 200
    assert "smb://" not in in_address.text


def test_a_peer_says_how_many_results_in_how_long(start_gateway: Any, tmp_path: Path) -> None:
    root = tmp_path / "peer"
    write(root / "2026/03/09" / NAME)
    peer: Gateway = start_gateway(root=Archive(root, []))
    done = subprocess.run(
        [*GATEWAY, "search", "--path", f"gateway+{peer.url}?site=rome", "--timezone", TZ,
         "--callid", CALLID, "--timestamp", WHEN, "--explain"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "GATEWAY_PEER_TOKEN_ROME": TOKEN},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if line.startswith("asked peer ")]
    assert line.startswith(f"asked peer site rome at {peer.url}: 1 results in "), line
    assert line.endswith(" ms"), line
