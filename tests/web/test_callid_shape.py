"""A search names one call: a phone number, an extension, a queue or a date is no call id.

Issue #14: whole-token matching alone listed every recording whose name holds the token, so
``callid=<caller's number>`` listed that caller's calls. Call ids must have the shape of the
PBX's ids (``--callid-pattern``, by default Asterisk's ``EPOCH.SEQ`` or a UUID).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_gateway, write
from tests.web.conftest import Archive

CALLER = "3930123456"
CALLS = {
    "1773047700.109": "2026/03/09/in-3930123456-201-20260309-101500-1773047700.109.wav",
    "1773051300.7": "2026/03/09/q-400-3930123456-20260309-111500-1773051300.7.wav",
    "pbx-a-1773054900.12": "2026/03/09/out-3930123456-201-20260309-121500-pbx-a-1773054900.12.wav",
    "0b4a6a36-5d1e-4c3b-9d7e-0e1f2a3b4c5d": "2026/03/09/0b4a6a36-5d1e-4c3b-9d7e-0e1f2a3b4c5d.wav",
}
NOT_CALL_IDS = [
    CALLER,  # the caller's number: it is in three of the names above
    "201",  # an extension
    "400",  # a queue
    "20260309",  # a date
    "20260309-101500",  # a date and a time
    "1773047700",  # an epoch second without the channel's sequence number
]


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    root = tmp_path_factory.mktemp("calls")
    for key in CALLS.values():
        write(root / key, b"RIFF" + bytes(100))
    return Archive(root, [])


@pytest.mark.parametrize("callid", NOT_CALL_IDS)
def test_a_number_that_is_no_call_id_lists_nothing(start_gateway: Any, callid: str) -> None:
    gw = start_gateway()
    answer = gw.search(callid=callid, timestamp="2026-03-09T10:15:00+01:00")
    assert answer.status_code == 400, answer.text
    assert answer.json()["status"] == "ERROR"
    assert "does not look like one call's id" in answer.json()["error"]


def test_each_call_id_finds_its_own_call_only(start_gateway: Any) -> None:
    gw = start_gateway()
    for callid, key in CALLS.items():
        answer = gw.search(callid=callid, timestamp="2026-03-09T12:00:00+01:00")
        assert answer.status_code == 200, answer.text
        assert [f["name"] for f in answer.json()["files"]] == [key.rsplit("/", 1)[1]]


def test_the_cli_refuses_it_in_one_line(archive: Archive) -> None:
    done = run_gateway("search", "--path", str(archive.root), "--callid", CALLER)
    assert done.returncode == 2
    assert b"does not look like one call's id" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_site_with_other_ids_says_what_they_look_like(archive: Archive, tmp_path: Path) -> None:
    write(archive.root / "2026/03/09/rec-CALL42-3930123456.wav", b"RIFF")
    config = tmp_path / "gateway.toml"
    config.write_text(f'path = "{archive.root}"\ncallid_pattern = "CALL[0-9]+"\n')
    done = run_gateway("search", "--config", str(config), "--callid", "CALL42", "--json")
    assert done.returncode == 0, done.stderr
    assert b"rec-CALL42-3930123456.wav" in done.stdout
    refused = run_gateway("search", "--config", str(config), "--callid", CALLER)
    assert refused.returncode == 2


@pytest.mark.parametrize("pattern", ["(", ".*"])
def test_a_pattern_that_cannot_name_a_call_is_refused(archive: Archive, pattern: str) -> None:
    args = ["--path", str(archive.root), "--callid-pattern", pattern, "--callid", "1.1"]
    done = run_gateway("search", *args)
    assert done.returncode == 2
    assert b"--callid-pattern" in done.stderr
    assert b"Traceback" not in done.stderr
