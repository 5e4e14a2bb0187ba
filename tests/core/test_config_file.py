"""`--config FILE`: TOML settings named like the long options, below flags and variables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_gateway, write

CALL = "1700000000.3"


@pytest.fixture
def archives(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "first", tmp_path / "second"
    write(first / f"2026/03/09/q-{CALL}.wav")
    write(second / f"2026/03/09/in-{CALL}.wav")
    write(second / f"2026/03/09/in-{CALL}-out.wav")
    return first, second


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return str(path)


def names(done: object) -> list[str]:
    assert getattr(done, "returncode", None) == 0, getattr(done, "stderr", b"")
    return sorted(f["name"] for f in json.loads(done.stdout))  # type: ignore[attr-defined]


def test_the_file_gives_sources_layout_and_zone(
    tmp_path: Path, archives: tuple[Path, Path]
) -> None:
    first, second = archives
    cfg = config(
        tmp_path,
        f'path = ["{first}", "{second}"]\nlayout = "freepbx"\ntimezone = "Europe/Rome"\n'
        f'search_all = true\nbind_to = "localhost:4999"  # a serve setting: ignored by search\n',
    )
    done = run_gateway("search", "--config", cfg, "--callid", CALL, "--json",
                       "--timestamp", "2026-03-09.10:00:00")  # fmt: skip
    assert names(done) == [f"in-{CALL}-out.wav", f"in-{CALL}.wav", f"q-{CALL}.wav"]


def test_a_flag_wins_over_the_file(tmp_path: Path, archives: tuple[Path, Path]) -> None:
    first, second = archives
    cfg = config(tmp_path, f'path = "{first}"\n')
    done = run_gateway("search", "--config", cfg, "--path", str(second), "--callid", CALL,
                       "--json")  # fmt: skip
    assert names(done) == [f"in-{CALL}-out.wav", f"in-{CALL}.wav"]


def test_the_file_can_come_from_the_environment(
    tmp_path: Path, archives: tuple[Path, Path]
) -> None:
    first, _ = archives
    cfg = config(tmp_path, f'path = "{first}"\n')
    done = run_gateway("search", "--callid", CALL, "--json", env={"GATEWAY_CONFIG": cfg})
    assert names(done) == [f"q-{CALL}.wav"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('pathh = "/tmp"\n', b"unknown setting(s) pathh"),
        ("path = \n", b"not valid TOML"),
        ('[server]\nbind_to = "x"\n', b"not a known table"),
    ],
)
def test_a_bad_file_is_a_configuration_error(tmp_path: Path, text: str, message: bytes) -> None:
    done = run_gateway("search", "--config", config(tmp_path, text), "--callid", CALL)
    assert done.returncode == 2
    assert message in done.stderr
    assert b"Traceback" not in done.stderr


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    done = run_gateway("search", "--config", str(tmp_path / "nope.toml"), "--callid", CALL)
    assert done.returncode == 2
    assert b"no configuration file" in done.stderr


def test_store_options_table(tmp_path: Path, archives: tuple[Path, Path]) -> None:
    first, _ = archives
    cfg = config(tmp_path, f'path = "{first}"\n[option]\nsmb_timeout = "10"\n')
    assert names(run_gateway("search", "--config", cfg, "--callid", CALL, "--json"))
    typo = config(tmp_path, f'path = "{first}"\n[option]\nsmbtimeout = "10"\n')
    done = run_gateway("search", "--config", typo, "--callid", CALL)
    assert done.returncode == 2
    assert b"the option 'smbtimeout' names no store scheme or layout" in done.stderr
