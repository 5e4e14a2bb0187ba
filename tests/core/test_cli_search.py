"""`gateway search` and `gateway get` end to end, through the real command line on real trees."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_gateway, write

Run = Callable[..., subprocess.CompletedProcess[bytes]]
TZ = "Europe/Rome"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("demo")
    done = run_gateway("demo", str(root), "--end", "2026-03-09", "--timezone", TZ, "--json")
    assert done.returncode == 0, done.stderr
    return root, json.loads(done.stdout)


def found(done: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    assert done.returncode == 0, done.stderr.decode()
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def search(*args: str) -> subprocess.CompletedProcess[bytes]:
    return run_gateway("search", "--timezone", TZ, "--json", *args)


def test_every_demo_call_is_found_with_all_its_files(demo: tuple[Path, list[Any]]) -> None:
    root, calls = demo
    for call in calls:
        done = search("--path", str(root), "--layout", "freepbx", "--callid", call["callid"],
                      "--timestamp", call["start"])  # fmt: skip
        assert sorted(f["key"] for f in found(done)) == sorted(call["files"]), call


def test_placeholder_path_finds_the_same_as_the_layout(demo: tuple[Path, list[Any]]) -> None:
    root, calls = demo
    call = calls[5]
    done = search("--path", f"file:{root}/%YY/%MM/%DD", "--callid", call["callid"],
                  "--timestamp", call["start"])  # fmt: skip
    # keys are relative to the fixed part of the path, so they hold the day folders
    assert sorted(f["key"] for f in found(done)) == sorted(call["files"])


def test_json_fields_and_empty_recordings(demo: tuple[Path, list[Any]]) -> None:
    root, calls = demo
    outbound = calls[3]  # every fourth demo call recorded nothing
    [file] = found(search("--path", str(root), "--callid", outbound["callid"]))
    assert file["empty"] is True
    assert file["size"] == 44
    assert file["type"] == "audio/wav"
    assert file["mtime"].endswith("Z")
    assert set(file) >= {"name", "key", "size", "mtime", "type", "empty"}


def test_layout_search_without_timestamp_scans_day_folders(demo: tuple[Path, Any]) -> None:
    root, calls = demo
    done = search("--path", str(root), "--layout", "freepbx", "--callid", calls[0]["callid"])
    assert len(found(done)) == 1


def test_call_near_midnight_needs_the_lookback(demo: tuple[Path, list[Any]]) -> None:
    root, calls = demo
    late = calls[-1]  # 23:58:10 on the last day
    assert late["start"].startswith("2026-03-09T23:58")
    # QueueMetrics may log the call's start a few minutes later, after midnight.
    args = ["--path", str(root), "--layout", "freepbx", "--callid", late["callid"],
            "--timestamp", "2026-03-10.00:03:00"]  # fmt: skip
    assert len(found(search(*args))) == 1
    assert search(*args, "--lookback", "0").returncode == 1


def test_timestamp_in_utc_is_mapped_to_the_pbx_day(demo: tuple[Path, list[Any]]) -> None:
    root, calls = demo
    late = calls[-1]
    # 22:58:10Z is 23:58:10 in Rome: the file is in the 2026/03/09 folder.
    done = search("--path", str(root), "--layout", "freepbx", "--lookback", "0",
                  "--callid", late["callid"], "--timestamp", "2026-03-09T22:58:10Z")  # fmt: skip
    assert len(found(done)) == 1


@pytest.fixture
def fusion(tmp_path: Path) -> Path:
    root = tmp_path / "recordings"
    write(root / "a.example.com/archive/2026/Mar/09/0b4a6a36-5d1e-4c3b-9d7e-000000001111.wav")
    write(root / "b.example.com/archive/2026/Mar/09/0b4a6a36-5d1e-4c3b-9d7e-000000002222.wav")
    write(root / "b.example.com/archive/2026/Mar/10/0b4a6a36-5d1e-4c3b-9d7e-000000003333.mp3")
    return root


def test_fusionpbx_layout_with_and_without_tenant(fusion: Path) -> None:
    base = ["--path", str(fusion), "--layout", "fusionpbx", "--timestamp", "2026-03-09T12:00"]
    mine = found(
        search(
            *base, "--callid", "0b4a6a36-5d1e-4c3b-9d7e-000000002222", "--tenant", "b.example.com"
        )
    )
    assert [f["key"] for f in mine] == [
        "b.example.com/archive/2026/Mar/09/0b4a6a36-5d1e-4c3b-9d7e-000000002222.wav"
    ]
    not_mine = search(
        *base, "--callid", "0b4a6a36-5d1e-4c3b-9d7e-000000002222", "--tenant", "a.example.com"
    )
    assert not_mine.returncode == 1
    anywhere = found(search(*base, "--callid", "0b4a6a36-5d1e-4c3b-9d7e-000000002222"))
    assert len(anywhere) == 1


def test_tenant_placeholder_path(fusion: Path) -> None:
    path = f"{fusion}/%TE/archive/%YY/%ME/%DD"
    done = search("--path", path, "--callid", "0b4a6a36-5d1e-4c3b-9d7e-000000003333",
                  "--tenant", "b.example.com", "--timestamp", "2026-03-10T09:00")  # fmt: skip
    assert len(found(done)) == 1
    without_timestamp = search("--path", path, "--callid", "0b4a6a36-5d1e-4c3b-9d7e-000000003333",
                               "--tenant", "b.example.com")  # fmt: skip
    assert len(found(without_timestamp)) == 1
    no_tenant = search("--path", path, "--callid", "0b4a6a36-5d1e-4c3b-9d7e-000000003333")
    assert no_tenant.returncode == 2
    assert b"tenant" in no_tenant.stderr


def test_whole_token_matching(tmp_path: Path) -> None:
    write(tmp_path / "in-1-2-20231114-221320-1700000000.1.wav")
    write(tmp_path / "in-1-2-20231114-221320-1700000000.12.wav")
    write(tmp_path / "sub/1700000000.1-out.wav")
    write(tmp_path / "sub/1700000000.1.txt")
    keys = sorted(f["key"] for f in found(search("--path", str(tmp_path), "--callid",
                                                 "1700000000.1")))  # fmt: skip
    assert keys == ["in-1-2-20231114-221320-1700000000.1.wav", "sub/1700000000.1-out.wav"]


def test_first_source_that_finds_the_call_wins(tmp_path: Path) -> None:
    for site in ("a", "b", "c"):
        write(tmp_path / site / f"{site}-1700000000.5.wav")
    write(tmp_path / "empty/readme.txt")
    path = ",".join(f"file:{tmp_path / s}" for s in ("empty", "a", "b")) + f",{tmp_path / 'c'}"
    first = found(search("--path", path, "--callid", "1700000000.5"))
    assert [f["name"] for f in first] == ["a-1700000000.5.wav"]
    every = found(search("--path", path, "--callid", "1700000000.5", "--search-all"))
    assert [f["name"] for f in every] == [f"{s}-1700000000.5.wav" for s in "abc"]


def test_get_writes_one_file_or_a_folder(demo: tuple[Path, list[Any]], tmp_path: Path) -> None:
    root, calls = demo
    single, legs = calls[0], calls[1]
    out = tmp_path / "one.wav"
    done = run_gateway("get", "--path", str(root), "--callid", single["callid"], "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == (root / single["files"][0]).read_bytes()

    folder = tmp_path / "legs"
    done = run_gateway("get", "--path", str(root), "--callid", legs["callid"], "-o", str(folder))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == sorted(Path(k).name for k in legs["files"])
    for key in legs["files"]:
        assert (folder / Path(key).name).read_bytes() == (root / key).read_bytes()


def test_get_by_key_to_stdout(demo: tuple[Path, list[Any]]) -> None:
    root, calls = demo
    key = calls[2]["files"][0]
    done = run_gateway("get", "--path", str(root), "--key", key, "-o", "-")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (root / key).read_bytes()


def test_get_refuses_a_key_outside_the_root(demo: tuple[Path, list[Any]]) -> None:
    root, _ = demo
    done = run_gateway("get", "--path", str(root), "--key", "../../etc/passwd", "-o", "-")
    assert done.returncode == 2
    assert done.stdout == b""


def test_backend_local_with_bare_path(demo: tuple[Path, list[Any]]) -> None:
    root, calls = demo
    done = search("--backend", "local", "--path", str(root), "--callid", calls[0]["callid"])
    assert len(found(done)) == 1


def test_nothing_found_is_exit_status_1(demo: tuple[Path, list[Any]]) -> None:
    root, _ = demo
    done = search("--path", str(root), "--callid", "1999999999.1")
    assert done.returncode == 1
    assert b"no recordings found" in done.stderr
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--path", "ftp://host/x", "--callid", "1773047700.1"], b"unknown storage scheme 'ftp'"),
        (
            ["--path", "{root}", "--layout", "nope", "--callid", "1773047700.1"],
            b"unknown layout 'nope'",
        ),
        (["--path", "{root}/missing", "--callid", "1773047700.1"], b"does not exist"),
        (["--path", "{root}", "--callid", "1773047700.1", "--timestamp", "soon"], b"timestamp"),
        (["--path", "{root}", "--callid", ""], b"call id is empty"),
        (["--path", "{root}", "--callid", "../1.1"], b"call id contains"),
        (["--path", "{root}", "--callid", "a\\b"], b"call id contains"),
        (["--path", "{root}", "--callid", "wav"], b"holds no digit"),
        (["--path", "{root}", "--callid", "1773047700.1", "--timezone", "Mars/Base"], b"time zone"),
        (["--path", "{root}", "--callid", "1773047700.1", "--backend", "tape"], b"unknown backend"),
        (
            ["--path", "{root}/%YY", "--layout", "freepbx", "--callid", "1773047700.1"],
            b"placeholders",
        ),
        (["--path", "{root}", "--callid", "1773047700.1", "--tenant", ".."], b"tenant"),
        (["--path", "{root}"], b"--callid is required"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    demo: tuple[Path, Any], args: list[str], message: bytes
) -> None:
    root, _ = demo
    done = run_gateway("search", *[a.replace("{root}", str(root)) for a in args])
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert b"Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_an_id_matching_more_than_a_call_is_refused(tmp_path: Path) -> None:
    for n in range(101):
        write(tmp_path / f"2026/03/09/q-{n}-1700000000.1.wav")
    done = search("--path", str(tmp_path), "--callid", "1700000000.1")
    assert done.returncode == 2
    assert b"more than 100 files match" in done.stderr


def test_get_keeps_files_of_the_same_name_apart(tmp_path: Path) -> None:
    write(tmp_path / "a/1700000000.6-in.wav", b"RIFF-from-a")
    write(tmp_path / "b/1700000000.6-in.wav", b"RIFF-from-b")
    out = tmp_path / "out"
    done = run_gateway("get", "--path", f"{tmp_path / 'a'},{tmp_path / 'b'}", "--search-all",
                       "--callid", "1700000000.6", "-o", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = {p.name: p.read_bytes() for p in out.iterdir()}
    assert got == {"1700000000.6-in.wav": b"RIFF-from-a", "1700000000.6-in-2.wav": b"RIFF-from-b"}
