"""Searching SMB sources with each layout and with placeholders, through the Python API and
the real ``gateway`` command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.errors import UsageError
from gateway.plugins import load_plugins
from gateway.query import Query
from gateway.search import SearchSettings, search
from gateway.sources import StoreSource, open_sources
from tests.conftest import run_gateway
from tests.smb.conftest import CALL_DAY, Share

UTC_SETTINGS = SearchSettings(timezone=ZoneInfo("UTC"))
START = datetime.fromisoformat(CALL_DAY)
FREEPBX_CALL = "1741342500.17"


@pytest.fixture
def opened() -> Iterator[list[list[StoreSource]]]:
    """Collects the sources a test opens and closes them afterwards."""
    made: list[list[StoreSource]] = []
    yield made
    for sources in made:
        for source in sources:
            source.close()


def find(
    opened: list[list[StoreSource]], path: str, query: Query, layout: str | None = None
) -> list[str]:
    sources = open_sources(path, load_plugins(), layout=layout)
    opened.append(sources)
    return [r.key for r in search(sources, query, UTC_SETTINGS)]


def test_freepbx_layout_narrowed_by_the_timestamp(share: Share, opened: list[list[StoreSource]]):
    keys = find(opened, share.url("freepbx"), Query(FREEPBX_CALL, start=START), "freepbx")
    assert keys == [
        "2025/03/07/in-17778611565-13164619284-20250307-101500-1741342500.17.wav",
        "2025/03/07/out-13164619284-201-20250307-101500-1741342500.17.wav",
    ]  # and not 1741342500.170


def test_freepbx_layout_without_timestamp_scans(share: Share, opened: list[list[StoreSource]]):
    keys = find(opened, share.url("freepbx"), Query("1741302000.4"), "freepbx")
    assert keys == ["2025/03/06/in-1-2-20250306-230000-1741302000.4.wav"]


def test_placeholders_in_the_path(share: Share, opened: list[list[StoreSource]]) -> None:
    keys = find(opened, share.url("freepbx/%YY/%MM/%DD"), Query(FREEPBX_CALL, start=START))
    assert len(keys) == 2
    assert all(k.startswith("2025/03/07/") for k in keys)
    # a day with nothing filed under it: the day folder is missing, nothing is found
    other_day = datetime.fromisoformat("2025-03-09T12:00:00+00:00")
    assert (
        find(opened, share.url("freepbx/%YY/%MM/%DD"), Query(FREEPBX_CALL, start=other_day)) == []
    )


def test_fusionpbx_layout_with_and_without_tenant(share: Share, opened: list[list[StoreSource]]):
    uuid = "a1b2c3d4-0000-4000-8000-000000000001"
    expected = [f"tenant1.example.com/archive/2025/Mar/07/{uuid}.wav"]
    url = share.url("fusionpbx")
    query = Query(uuid, start=START, tenant="tenant1.example.com")
    assert find(opened, url, query, "fusionpbx") == expected
    assert find(opened, url, Query(uuid, start=START), "fusionpbx") == expected
    wrong = Query(uuid, start=START, tenant="tenant2.example.com")
    assert find(opened, url, wrong, "fusionpbx") == []


def test_tenant_placeholder(share: Share, opened: list[list[StoreSource]]) -> None:
    uuid = "b1b2c3d4-0000-4000-8000-000000000002"
    url = share.url("fusionpbx/%TE/archive/%YY/%ME/%DD")
    query = Query(uuid, start=START, tenant="tenant2.example.com")
    assert find(opened, url, query) == [f"tenant2.example.com/archive/2025/Mar/07/{uuid}.mp3"]
    with pytest.raises(UsageError):
        find(opened, url, Query(uuid, start=START))


def test_flat_layout_finds_deep_files_as_whole_tokens(
    share: Share, opened: list[list[StoreSource]]
) -> None:
    assert find(opened, share.url("flat"), Query("1700000000.12")) == ["QSAMPLE-1700000000.12.wav"]
    assert find(opened, share.url("flat"), Query("1700000000.1")) == [
        "deep/er/still/in-9-8-20231114-221320-1700000000.1.wav"
    ]  # not the .txt, not 1700000000.12


def test_smb_after_a_local_source(
    share: Share, opened: list[list[StoreSource]], tmp_path: Path
) -> None:
    path = f"file:{tmp_path},{share.url('freepbx')}"
    keys = find(opened, path, Query(FREEPBX_CALL, start=START), "freepbx")
    assert len(keys) == 2


# -- the command line ---------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    done = run_gateway(*args, env=env)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def test_cli_search_with_password_in_environment(share: Share) -> None:
    code, out, err = cli(
        "search", "--path", share.server.url("freepbx"), "--layout", "freepbx",
        "--callid", FREEPBX_CALL, "--timestamp", CALL_DAY, "--json",
        env={"GATEWAY_SMB_PASSWORD": share.server.password},
    )  # fmt: skip
    assert code == 0, err
    files = json.loads(out)
    assert [f["name"] for f in files] == [
        "in-17778611565-13164619284-20250307-101500-1741342500.17.wav",
        "out-13164619284-201-20250307-101500-1741342500.17.wav",
    ]
    assert all(f["source"].startswith("smb://") for f in files)
    assert share.server.password not in out


def test_cli_get_with_password_file(share: Share, tmp_path: Path) -> None:
    pw = tmp_path / "smb-password"
    pw.write_text(share.server.password + "\n")
    out_file = tmp_path / "got.wav"
    code, _, err = cli(
        "get", "--path", share.server.url(), "--smb-password-file", str(pw),
        "--key", share.big, "-o", str(out_file),
    )  # fmt: skip
    assert code == 0, err
    assert out_file.read_bytes() == share.bytes_of(share.big)


def test_cli_wrong_password_exits_3_without_showing_it(share: Share) -> None:
    wrong = "Not-The-Password-42"
    code, out, err = cli(
        "search", "--path", share.server.url("freepbx", password=wrong),
        "--layout", "freepbx", "--callid", FREEPBX_CALL, "--timestamp", CALL_DAY,
    )  # fmt: skip
    assert code == 3, err
    assert wrong not in out + err
    assert f"127.0.0.1:{share.server.port}/recordings/freepbx" in err


def test_cli_server_down_exits_3(samba_installed: None) -> None:
    from tests.conftest import free_port

    code, _, err = cli(
        "search", "--path", f"smb://u:pw-x@127.0.0.1:{free_port()}/rec?timeout=2",
        "--callid", FREEPBX_CALL,
    )  # fmt: skip
    assert code == 3, err
    assert "pw-x" not in err
