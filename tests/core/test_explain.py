"""``gateway search --explain``: the folders each source listed, how long each took, errors, and
near misses, so that a call filed under the wrong day, a wrong time zone or a wrong layout
shows at once. Run through the real command line on real folders (and a real peer gateway)."""

from __future__ import annotations

import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from gateway.explain import NEAR_MISSES_PER_FOLDER, Explanation
from gateway.plugins import load_plugins
from gateway.query import Query
from gateway.search import Searcher, SearchSettings
from gateway.sources import open_sources
from tests.conftest import GATEWAY, write

ROME = ZoneInfo("Europe/Rome")
START = datetime(2026, 3, 9, 14, 47, 5, tzinfo=ROME)
CALLID = f"{int(START.timestamp())}.111"
NAME = f"in-200-100-20260309-144705-{CALLID}.wav"
NEIGHBOURS = [  # other calls of that day, in the folder the search lists
    "in-200-100-20260309-090000-1773043200.7.wav",
    "out-101-200-20260309-180000-1773075600.9.wav",
]


def gateway(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GATEWAY, *args], capture_output=True, text=True, timeout=60, cwd=cwd, check=False
    )


def search_args(root: Path, *extra: str, tz: str = "Europe/Rome") -> list[str]:
    return ["search", "--path", str(root), "--layout", "freepbx", "--timezone", tz, *extra]


def archive(root: Path, files: dict[str, str | bytes]) -> Path:
    for key, body in files.items():
        write(root / key, body.encode() if isinstance(body, str) else body)
    return root


def test_a_call_filed_under_the_previous_day_is_named_as_a_near_miss(tmp_path: Path) -> None:
    """The PBX filed the call under 2026/03/08 (its clock's day was wrong): the search lists
    2026/03/09 only (14:47 is far from midnight) and finds nothing; the explanation names the
    file in the previous day's folder, outside the window the look-back gives."""
    root = archive(
        tmp_path / "rec",
        {f"2026/03/08/{NAME}": "x" * 100, **{f"2026/03/09/{n}": "x" * 100 for n in NEIGHBOURS}},
    )
    done = gateway(*search_args(root, "--callid", CALLID, "--timestamp", "2026-03-09.14:47:05",
                                "--explain"))  # fmt: skip
    assert done.returncode == 1, done.stderr  # not found, as without --explain
    assert done.stdout == ""  # the explanation goes to stderr: stdout stays the list of files
    lines = done.stderr.splitlines()
    assert lines[0] == (
        f"call {CALLID}: started 2026-03-09 14:47:05 Europe/Rome; look-back 4 h: days 2026-03-09"
    )
    assert any(line.startswith("  listed 2026/03/09: 2 names in ") for line in lines), lines
    assert (
        f"    near miss: 2026/03/08/{NAME}: the call's file, outside the search window" in lines
    ), lines
    outside = [line for line in lines if "outside the search window, listed to explain" in line]
    assert [line.split(" (")[0] for line in outside] == [
        "  listed 2026/03/08",
        "  listed 2026/03/10",
    ]
    assert "does not exist" in outside[1]


def test_a_pbx_writing_in_utc_shows_its_time_zone(tmp_path: Path) -> None:
    """The PBX files and names its recordings in UTC; the gateway searches in Asia/Tokyo. A call
    at 08:00 in Tokyo is 23:00 UTC the day before: filed under 2026/03/09 while the gateway,
    8 hours past midnight, lists 2026/03/10 alone. The explanation points at the file and says
    its name's time is 9 hours before the call's start: a time zone."""
    start = datetime(2026, 3, 10, 8, 0, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    callid = f"{int(start.timestamp())}.42"
    name = f"in-200-100-{start.astimezone(UTC):%Y%m%d-%H%M%S}-{callid}.wav"
    other = "2026/03/10/in-200-100-20260310-010000-1773104400.1.wav"  # 10:00 in Tokyo
    root = archive(tmp_path / "rec", {f"2026/03/09/{name}": "x" * 100, other: "x"})
    done = gateway(*search_args(root, "--callid", callid, "--timestamp", "2026-03-10.08:00:00",
                                "--explain", tz="Asia/Tokyo"))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "days 2026-03-10\n" in done.stderr
    assert (
        f"near miss: 2026/03/09/{name}: the call's file, outside the search window; its name's "
        "time 2026-03-09 23:00:00 is 9 h 00 min before the call's start 2026-03-10 08:00:00 "
        "(Asia/Tokyo)"
    ) in done.stderr


def test_near_misses_in_the_listed_folder_and_their_bound(tmp_path: Path) -> None:
    """Names in the folder listed that hold the call id but are no audio file of it, hold its
    epoch part, or whose time is minutes from the call's: near misses; an unrelated call of
    the same day is not. Near misses are bounded per folder; the rest are counted."""
    epoch = CALLID.split(".")[0]
    near = {
        f"2026/03/09/{CALLID}.wav.part": "holds the call id, but is not an audio file",
        f"2026/03/09/in-200-100-20260309-144705-{epoch}-111.wav": f"holds '{epoch}' of the call id",
        "2026/03/09/in-200-100-20260309-145200-1773064320.5.wav": "its name's time 2026-03-09 "
        "14:52:00 is 4 min after the call's start 2026-03-09 14:47:05 (Europe/Rome)",
    }
    crowd = {f"2026/03/09/q-{epoch}.{n}x.txt": "x" for n in range(3 * NEAR_MISSES_PER_FOLDER)}
    root = archive(tmp_path / "rec", {**dict.fromkeys(near, "x"),
                                      **{f"2026/03/09/{n}": "x" for n in NEIGHBOURS}})  # fmt: skip
    when = ("--timestamp", "2026-03-09.14:47:05")
    done = gateway(*search_args(root, "--callid", CALLID, *when, "--explain"))
    assert done.returncode == 1, done.stderr
    for key, why in near.items():
        assert f"    near miss: {key}: {why}\n" in done.stderr
    assert NEIGHBOURS[0] not in done.stderr
    assert NEIGHBOURS[1] not in done.stderr

    archive(root, crowd)
    done = gateway(*search_args(root, "--callid", CALLID, *when, "--explain"))
    misses = [line for line in done.stderr.splitlines() if "near miss: 2026/03/09/" in line]
    assert len(misses) == NEAR_MISSES_PER_FOLDER
    assert f"    ... and {len(near) + len(crowd) - NEAR_MISSES_PER_FOLDER} more near misses\n" in (
        done.stderr
    )


def test_explaining_changes_no_answer_and_lists_nothing_more_when_found(tmp_path: Path) -> None:
    """The same recordings with and without an explanation; when the call is found, only the
    window's folders are listed (nothing beyond), each listed once, with its time."""
    root = archive(
        tmp_path / "rec",
        {f"2026/03/09/{NAME}": "x" * 100, **{f"2026/03/09/{n}": "x" * 100 for n in NEIGHBOURS}},
    )
    settings = SearchSettings(timezone=ROME)
    sources = open_sources(str(root), load_plugins(), layout="freepbx")
    searcher = Searcher(sources, settings)
    try:
        query = Query(CALLID, start=START)
        explanation = Explanation()
        explained = searcher.find(query, explain=explanation)
        plain = searcher.find(query)
    finally:
        searcher.close()
    assert [r.key for r in explained.recordings] == [r.key for r in plain.recordings]
    assert [r.key for r in plain.recordings] == [f"2026/03/09/{NAME}"]
    (trace,) = explanation.sources
    assert trace.results == 1
    assert trace.error is None
    assert trace.days == [date(2026, 3, 9)]
    assert [(f.folder, f.outside, f.names) for f in trace.folders] == [("2026/03/09", False, 3)]
    assert trace.folders[0].seconds > 0
    assert trace.seconds >= trace.folders[0].seconds
    assert explanation.to_json()["days"] == ["2026-03-09"]


def test_a_failing_source_is_explained_and_the_next_one_answers(tmp_path: Path) -> None:
    root = archive(tmp_path / "rec", {f"2026/03/09/{NAME}": "x" * 100})
    done = gateway(*search_args(Path(f"{tmp_path}/gone,{root}"), "--callid", CALLID,
                                "--timestamp", "2026-03-09.14:47:05", "--explain"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert NAME in done.stdout
    lines = done.stderr.splitlines()
    assert lines[1].startswith(f"source file:{tmp_path}/gone (2026-03-09): ERROR "), lines
    assert lines[2].startswith(f"source file:{root} (2026-03-09): 1 results in "), lines


def test_a_call_found_only_by_the_full_scan_shows_both_passes(tmp_path: Path) -> None:
    """Without a timestamp the days come from the call id; a call filed under another day is
    found by the full scan that follows, and the explanation shows the narrowed pass missed."""
    root = archive(tmp_path / "rec", {f"2026/03/08/{NAME}": "x" * 100})
    done = gateway(*search_args(root, "--callid", CALLID, "--explain"))
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[1].startswith(f"source file:{root} (2026-03-09): 0 results in ")
    second = next(i for i, line in enumerate(lines) if "everywhere: no day to narrow to" in line)
    assert "1 results in" in lines[second]
    assert lines[second + 1].startswith("  listed (the root) and below: ")


def test_escape_sequences_in_names_never_reach_the_terminal(tmp_path: Path) -> None:
    """A name on a share can hold a terminal's escape sequences (ESC ]... to set the title,
    ESC [2J to clear the screen); the explanation prints them escaped."""
    hostile = f"\x1b]0;owned\x07\x1b[2J{CALLID}.txt"
    root = archive(tmp_path / "rec", {f"2026/03/09/{hostile}": "x"})
    done = gateway(*search_args(root, "--callid", CALLID, "--timestamp", "2026-03-09.14:47:05",
                                "--explain"))  # fmt: skip
    assert "\x1b" not in done.stderr
    assert "\x07" not in done.stderr
    assert f"\\x1b]0;owned\\x07\\x1b[2J{CALLID}.txt" in done.stderr
