"""`gateway demo`: the archives it writes are found by `gateway search`, run as a real process.

The FusionPBX demo files two domains' calls as FusionPBX does; each domain is a tenant, and a
tenant never finds another tenant's call. The FreePBX demo (the default) stays byte for byte what
the README, the docs and the other tests name.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import uuid
import wave
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_gateway

TZ = "Europe/Rome"
# Three days across a month's end, so both `Feb` and `Mar` folders are written.
FUSION = ("--end", "2026-03-01", "--days", "3", "--timezone", TZ, "--layout", "fusionpbx")
DOMAINS = ("pbx1.example.com", "pbx2.example.com")


def demo(root: Path, *args: str) -> str:
    done = run_gateway("demo", str(root), *args)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def search(root: Path, *args: str) -> tuple[int, list[dict[str, Any]]]:
    done = run_gateway(
        "search", "--path", str(root), "--layout", "fusionpbx", "--timezone", TZ, "--json", *args
    )
    assert done.returncode in (0, 1), done.stderr.decode()
    return done.returncode, json.loads(done.stdout) if done.returncode == 0 else []


@pytest.fixture(scope="module")
def fusion(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, list[dict[str, Any]]]:
    """The FusionPBX demo: its folder, the text it printed and its demo.json."""
    root = tmp_path_factory.mktemp("fusion")
    text = demo(root, *FUSION)
    return root, text, json.loads((root / "demo.json").read_text())


def test_every_printed_line_is_a_search_that_finds_its_call(
    fusion: tuple[Path, str, list[dict[str, Any]]],
) -> None:
    root, text, calls = fusion
    lines = [line for line in text.splitlines() if line.startswith("  --callid")]
    assert len(lines) == len(calls) == 16  # five calls a day, and one near midnight
    for line, call in zip(lines, calls, strict=True):
        assert f"--tenant {call['tenant']}" in line
        status, files = search(root, *shlex.split(line))
        assert status == 0, line
        assert [f["key"] for f in files] == call["files"]


def test_a_tenant_does_not_find_another_tenants_call(
    fusion: tuple[Path, str, list[dict[str, Any]]],
) -> None:
    root, _, calls = fusion
    for call in calls[:2]:  # one call of each domain
        [other] = [d for d in DOMAINS if d != call["tenant"]]
        query = ("--callid", call["callid"], "--timestamp", call["start"])
        assert search(root, *query, "--tenant", other) == (1, [])
        # without a tenant every domain is searched
        status, files = search(root, *query)
        assert (status, [f["key"] for f in files]) == (0, call["files"])


def test_fusion_archive_is_filed_as_fusionpbx_files_it(
    fusion: tuple[Path, str, list[dict[str, Any]]],
) -> None:
    root, _, calls = fusion
    assert {c["tenant"] for c in calls} == set(DOMAINS)
    days = {(c["tenant"], c["start"][:10]) for c in calls}
    assert len(days) == 2 * 3  # both domains have calls every day
    on_disk = sorted(str(p.relative_to(root)) for p in root.rglob("*.wav"))
    assert on_disk == sorted(key for c in calls for key in c["files"])
    for call in calls:
        start = datetime.fromisoformat(call["start"])
        callid = uuid.UUID(call["callid"])
        assert str(callid) == call["callid"]
        assert callid.version == 4
        [key] = call["files"]  # FusionPBX writes one file per call
        month = {2: "Feb", 3: "Mar"}[start.month]  # FreeSWITCH's strftime(%b)
        assert key == f"{call['tenant']}/archive/{start:%Y}/{month}/{start:%d}/{callid}.wav"
        assert (root / key).stat().st_mtime == start.timestamp()
        with wave.open(str(root / key)) as w:
            assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
    assert {c["files"][0].split("/")[3] for c in calls} == {"Feb", "Mar"}
    late = calls[-1]
    assert late["start"] == "2026-03-01T23:57:30+01:00"


def test_fusion_demo_is_deterministic_and_json_matches_demo_json(
    fusion: tuple[Path, str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    _, _, calls = fusion
    again = json.loads(demo(tmp_path, *FUSION, "--json"))
    assert again == calls == json.loads((tmp_path / "demo.json").read_text())
    other_end = json.loads(demo(tmp_path / "other", *FUSION[2:], "--end", "2026-03-02", "--json"))
    assert not {c["callid"] for c in other_end} & {c["callid"] for c in calls}


# `gateway demo` before --layout existed, for these arguments (README, docs and tests name
# these calls). FreePBX calls carry no tenant, in demo.json, --json and the printed lines.
FREEPBX_ONE_DAY = """\
Wrote 7 recordings of 5 calls to {root}
  --callid 1773044100.101 --timestamp 2026-03-09T09:15:00+01:00
  --callid 1773050550.102 --timestamp 2026-03-09T11:02:30+01:00
  --callid 1773064025.103 --timestamp 2026-03-09T14:47:05+01:00
  --callid 1773070245.104 --timestamp 2026-03-09T16:30:45+01:00
  --callid 1773097090.105 --timestamp 2026-03-09T23:58:10+01:00
"""
FREEPBX_ONE_DAY_FILES = [
    ["2026/03/09/q-300-399203773344-20260309-091500-1773044100.101.wav"],
    ["2026/03/09/1773050550.102-in.wav", "2026/03/09/1773050550.102-out.wav"],
    [
        "2026/03/09/in-200-397816116577-20260309-144705-1773064025.103.wav",
        "2026/03/09/1773064025.103_TR.wav",
    ],
    ["2026/03/09/out-397757797470-201-20260309-163045-1773070245.104.wav"],
    ["2026/03/09/q-300-398834258377-20260309-235810-1773097090.105.wav"],
]
# sha256 of every recording's key, content and mtime, and of demo.json, in the default
# three-day archive ending 2026-03-09 in Europe/Rome (the README's demo), before --layout.
FREEPBX_THREE_DAYS_DIGEST = "ba9dc9f9569f4a18a09a7142b04bbecce1ade646f43df692586c38e1075e87a2"


def archive_digest(root: Path) -> str:
    """What a user of the archive sees: every file's key, bytes and mtime."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        mtime = "" if key == "demo.json" else str(path.stat().st_mtime)  # demo.json: write time
        digest.update(f"{key}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\0{mtime}\n".encode())
    return digest.hexdigest()


@pytest.mark.parametrize("layout", [(), ("--layout", "freepbx")], ids=["default", "explicit"])
def test_freepbx_demo_is_unchanged(layout: tuple[str, ...], tmp_path: Path) -> None:
    one_day = tmp_path / "one-day"
    text = demo(one_day, "--end", "2026-03-09", "--days", "1", "--timezone", TZ, *layout)
    assert text == FREEPBX_ONE_DAY.format(root=one_day)
    listing = json.loads((one_day / "demo.json").read_text())
    assert [set(c) for c in listing] == [{"callid", "start", "files"}] * 5
    assert [c["files"] for c in listing] == FREEPBX_ONE_DAY_FILES
    readme = tmp_path / "readme"
    demo(readme, "--end", "2026-03-09", "--timezone", TZ, *layout)
    assert archive_digest(readme) == FREEPBX_THREE_DAYS_DIGEST


def test_unknown_layout_is_a_usage_error(tmp_path: Path) -> None:
    done = run_gateway("demo", str(tmp_path / "x"), "--layout", "issabel")
    assert done.returncode == 2
    assert re.search(rb"'freepbx'.*'fusionpbx'", done.stderr)
    assert not (tmp_path / "x").exists()
