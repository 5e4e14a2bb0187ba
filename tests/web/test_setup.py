"""``gateway setup``: from a demo archive to a gateway that QueueMetrics can search through
Caddy, with the files setup wrote and the properties it printed."""

from __future__ import annotations

import grp
import json
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import GATEWAY, free_port, run_gateway
from tests.web.conftest import Caddy, Gateway, caddy_missing, systemd_problems

CONFIG = Path("etc/recording-gateway/gateway.toml")
TOKEN_FILE = Path("etc/recording-gateway/token")
UNIT = Path("etc/systemd/system/recording-gateway.service")
CADDYFILE = Path("etc/caddy/Caddyfile")
SITE = ("--public-url", "https://pbx.example.com", "--timezone", "UTC")
WRITTEN = [CONFIG, TOKEN_FILE, Path("etc/sysusers.d/recording-gateway.conf"), UNIT, CADDYFILE]


@dataclass
class Demo:
    root: Path
    calls: list[dict[str, Any]]


def demo(folder: Path, layout: str) -> Demo:
    done = run_gateway(
        "demo", str(folder), "--layout", layout, "--end", "2026-03-09", "--timezone", "UTC"
    )
    assert done.returncode == 0, done.stderr
    return Demo(folder, json.loads((folder / "demo.json").read_text()))


@pytest.fixture(scope="module")
def freepbx(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return demo(tmp_path_factory.mktemp("freepbx") / "monitor", "freepbx")


@pytest.fixture(scope="module")
def fusionpbx(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return demo(tmp_path_factory.mktemp("fusionpbx") / "recordings", "fusionpbx")


def setup(
    root: Path, archive: Path, *extra: str, url: str = "https://recordings.example.com"
) -> subprocess.CompletedProcess[str]:
    args = ["--public-url", url, "--path", str(archive), "--timezone", "UTC", "--root", str(root)]
    done = run_gateway("setup", *args, *extra, input=b"")  # no question may be asked
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def printed_token(output: str) -> str:
    (token,) = re.findall(r"^audio\.jsonlistener\.searchtoken=(.+)$", output, re.MULTILINE)
    return token


def snapshot(root: Path) -> dict[Path, tuple[bytes, int, int]]:
    """Every file below ``root``: content, mode and modification time."""
    return {
        p.relative_to(root): (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def served(tmp_path: Path, freepbx: Demo) -> tuple[subprocess.CompletedProcess[str], int]:
    """``gateway setup --root`` on the FreePBX demo, for a site on a free loopback port."""
    port = free_port()
    done = setup(
        tmp_path / "root",
        freepbx.root,
        "--bind-to",
        f"127.0.0.1:{free_port()}",
        url=f"https://localhost:{port}",
    )
    assert done.returncode == 0, done.stderr
    return done, port


def test_setup_recognises_freepbx_and_times_a_search(tmp_path: Path, freepbx: Demo) -> None:
    done = setup(tmp_path, freepbx.root)
    assert done.returncode == 0, done.stderr
    assert "Proposed layout: freepbx" in done.stdout
    assert 'layout = "freepbx"' in (tmp_path / CONFIG).read_text()
    # the newest recordings are shown, each with a real search for its call
    newest = [c for c in freepbx.calls if c["start"].startswith("2026-03-09")]
    shown = re.findall(r"search for call (\S+): (\d+) file\(s\) in [0-9.]+ ms", done.stdout)
    assert len(shown) == 3
    for callid, count in shown:
        (call,) = [c for c in newest if c["callid"] == callid]
        assert int(count) == len(call["files"])


def test_setup_recognises_fusionpbx(tmp_path: Path, fusionpbx: Demo) -> None:
    done = setup(tmp_path, fusionpbx.root)
    assert done.returncode == 0, done.stderr
    assert "Proposed layout: fusionpbx" in done.stdout
    assert 'layout = "fusionpbx"' in (tmp_path / CONFIG).read_text()
    shown = re.findall(r"search for call (\S+): (\d+) file\(s\)", done.stdout)
    assert shown
    assert all(int(count) >= 1 for _, count in shown)


def test_a_flat_archive_is_proposed_flat(tmp_path: Path, freepbx: Demo) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for call in freepbx.calls:
        for key in call["files"]:
            shutil.copy(freepbx.root / key, flat / Path(key).name)
    done = setup(tmp_path / "root", flat)
    assert done.returncode == 0, done.stderr
    assert "Proposed layout: flat" in done.stdout


def test_written_files_serve_queuemetrics_through_caddy(
    tmp_path: Path, freepbx: Demo, served: tuple[subprocess.CompletedProcess[str], int]
) -> None:
    if caddy_missing():
        pytest.skip(caddy_missing())
    done, port = served
    root = tmp_path / "root"
    token = printed_token(done.stdout)
    # the printed QueueMetrics properties name the public /search/ and the token
    assert f"audio.jsonlistener.url=https://localhost:{port}/search/" in done.stdout
    assert f"default.audioRpcServer=https://localhost:{port}/xmlrpc?token={token}" in done.stdout
    assert (root / TOKEN_FILE).read_text().strip() == token
    # the secret is readable by its owner only (under --root there is no service group)
    assert stat.S_IMODE((root / TOKEN_FILE).stat().st_mode) == 0o600
    validated = subprocess.run(
        ["caddy", "validate", "--config", str(root / CADDYFILE), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
    )
    assert validated.returncode == 0, validated.stdout + validated.stderr
    # the written configuration serves (its token file is below --root here)
    gw = Gateway(
        ["--config", str(root / CONFIG), "--token-file", str(root / TOKEN_FILE)],
        tmp_path / "gateway.log",
    )
    (tmp_path / "caddy").mkdir()
    caddy = Caddy(tmp_path / "caddy", "", config=root / CADDYFILE, port=port)
    try:
        call = freepbx.calls[1]
        answer = requests.post(
            f"{caddy.url}/search/",
            data={"searchtoken": token, "callid": call["callid"], "timestamp": call["start"]},
            verify=caddy.verify,
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        files = answer.json()["files"]
        assert len(files) == len(call["files"])
        link = files[0]["url"]
        assert link.startswith(f"https://localhost:{port}/files/")
        audio = requests.get(link, headers={"Range": "bytes=0-3"}, verify=caddy.verify, timeout=30)
        assert (audio.status_code, audio.content) == (206, b"RIFF")
        wrong = requests.post(
            f"{caddy.url}/search/",
            data={"searchtoken": "not-" + token, "callid": call["callid"]},
            verify=caddy.verify,
            timeout=30,
        )
        assert wrong.status_code == 401
    finally:
        caddy.stop()
        gw.stop()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_written_unit_is_valid_for_systemd(
    tmp_path: Path, served: tuple[subprocess.CompletedProcess[str], int]
) -> None:
    unit = tmp_path / "root" / UNIT
    text = unit.read_text()
    assert "User=recording-gateway" in text
    assert "ProtectSystem=strict" in text
    (exec_start,) = [line for line in text.splitlines() if line.startswith("ExecStart=")]
    assert exec_start.endswith("serve --config /etc/recording-gateway/gateway.toml")
    assert os.access(exec_start.split("=", 1)[1].split()[0], os.X_OK)  # this installation's
    assert systemd_problems(unit) == []


def test_second_run_changes_nothing(
    tmp_path: Path, freepbx: Demo, served: tuple[subprocess.CompletedProcess[str], int]
) -> None:
    first, port = served
    root = tmp_path / "root"
    before = snapshot(root)
    again = setup(root, freepbx.root, "--bind-to", _bind(root), url=f"https://localhost:{port}")
    assert again.returncode == 0, again.stderr
    assert "Nothing to change" in again.stdout
    assert printed_token(again.stdout) == printed_token(first.stdout)
    assert snapshot(root) == before


def test_other_answers_are_refused_without_force(
    tmp_path: Path, freepbx: Demo, served: tuple[subprocess.CompletedProcess[str], int]
) -> None:
    first, port = served
    root = tmp_path / "root"
    before = snapshot(root)
    other = ["--bind-to", _bind(root), "--layout", "flat"]
    refused = setup(root, freepbx.root, *other, url=f"https://localhost:{port}")
    assert refused.returncode == 2
    assert "nothing was written" in refused.stderr
    assert str(CONFIG) in refused.stderr.replace("/etc/", "etc/")
    assert snapshot(root) == before
    forced = setup(root, freepbx.root, *other, "--force", url=f"https://localhost:{port}")
    assert forced.returncode == 0, forced.stderr
    assert 'layout = "flat"' in (root / CONFIG).read_text()
    assert printed_token(forced.stdout) == printed_token(first.stdout)  # the token is kept


def test_print_only_prints(tmp_path: Path, freepbx: Demo) -> None:
    root = tmp_path / "root"
    done = setup(root, freepbx.root, "--print")
    assert done.returncode == 0, done.stderr
    assert not root.exists()
    for path in WRITTEN:
        assert f"==> /{path} <==" in done.stdout
    assert "<the search token: not shown>" in done.stdout
    assert "audio.jsonlistener.url=https://recordings.example.com/search/" in done.stdout


def test_questions_are_asked_when_flags_are_missing(tmp_path: Path, freepbx: Demo) -> None:
    answers = f"https://pbx.example.com\n{freepbx.root}\nUTC\ny\n"
    done = run_gateway("setup", "--root", str(tmp_path), input=answers.encode())
    assert done.returncode == 0, done.stderr
    assert 'public_url = "https://pbx.example.com"' in (tmp_path / CONFIG).read_text()
    declined = run_gateway(
        "setup", "--root", str(tmp_path / "no"), input=answers[:-2].encode() + b"n\n"
    )
    assert declined.returncode == 1
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(
    "url", ["https://pbx.example.com/audio", "ftp://pbx.example.com", "pbx.example.com"]
)
def test_a_public_url_that_is_not_a_site_is_refused(
    tmp_path: Path, freepbx: Demo, url: str
) -> None:
    done = setup(tmp_path / "root", freepbx.root, url=url)
    assert done.returncode == 2
    assert "--public-url takes https://HOST[:PORT]" in done.stderr
    assert not (tmp_path / "root").exists()


def _debian_caddyfile() -> Path | None:
    """Debian's placeholder /etc/caddy/Caddyfile, when the caddy package put it there."""
    stock = Path("/etc/caddy/Caddyfile")
    listed = subprocess.run(
        ["dpkg-query", "--showformat=${Conffiles}", "--show", "caddy"],
        capture_output=True,
        text=True,
    )
    if listed.returncode != 0 or not stock.exists():
        return None
    import hashlib

    digest = hashlib.md5(stock.read_bytes(), usedforsecurity=False).hexdigest()
    return stock if f"{stock} {digest}" in listed.stdout else None


def test_debian_placeholder_caddyfile_is_replaced_an_edited_one_is_not(
    tmp_path: Path, freepbx: Demo
) -> None:
    stock = _debian_caddyfile()
    if stock is None:
        pytest.skip("Debian's caddy package with its unmodified Caddyfile is not installed")
    root = tmp_path / "root"
    (root / CADDYFILE).parent.mkdir(parents=True)
    shutil.copy(stock, root / CADDYFILE)
    done = setup(root, freepbx.root)
    assert done.returncode == 0, done.stderr
    assert "replaces the packaged default" in done.stdout
    assert "https://recordings.example.com {" in (root / CADDYFILE).read_text()
    edited = tmp_path / "edited"
    (edited / CADDYFILE).parent.mkdir(parents=True)
    (edited / CADDYFILE).write_bytes(stock.read_bytes() + b"\n# mine\n")
    refused = setup(edited, freepbx.root)
    assert refused.returncode == 2
    assert (edited / CADDYFILE).read_bytes().endswith(b"# mine\n")


def _bind(root: Path) -> str:
    (line,) = [
        line for line in (root / CONFIG).read_text().splitlines() if line.startswith("bind_to")
    ]
    return line.split('"')[1]


def test_hostile_file_names_reach_the_terminal_escaped(tmp_path: Path) -> None:
    """The survey prints names from the archive: a name holding a terminal escape sequence
    (which could retitle the window or worse) is shown with its control characters escaped."""
    day = tmp_path / "archive" / "2026" / "03" / "09"
    day.mkdir(parents=True)
    (day / "q-\x1b]0;pwned\x07-1773054150.110.wav").write_bytes(b"RIFF")
    done = setup(tmp_path / "root", tmp_path / "archive")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout
    assert "\\x1b]0;pwned\\x07-1773054150.110.wav" in done.stdout


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--public-url", "https://pbx.example.com {\n\trespond 200\n}"),
        ("--public-url", "https://pbx.example.com:99999"),
        ("--bind-to", "127.0.0.1:4000 {"),
        ("--bind-to", "localhost"),
    ],
)
def test_values_that_would_change_the_caddyfile_are_refused(
    tmp_path: Path, freepbx: Demo, option: str, value: str
) -> None:
    args = {"--public-url": "https://pbx.example.com", "--bind-to": "127.0.0.1:4000"}
    args[option] = value
    done = run_gateway(
        *("setup", "--root", str(tmp_path), "--path", str(freepbx.root), "--timezone", "UTC"),
        *(item for pair in args.items() for item in pair),
        input=b"",
    )
    assert done.returncode == 2, done.stdout
    assert f"{option} takes" in done.stderr.decode()
    assert not (tmp_path / CADDYFILE).exists()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_unit_runs_a_gateway_installed_in_any_folder(tmp_path: Path) -> None:
    """A virtual environment's path may hold spaces, ``%`` (``%n`` is a systemd specifier)
    and ``$`` (a variable)."""
    from gateway.setup_plan import Choices, unit

    gateway = tmp_path / "my venvs" / "100%n$HOME" / "bin" / "gateway"
    gateway.parent.mkdir(parents=True)
    gateway.write_text("#!/bin/sh\n")
    gateway.chmod(0o755)
    choices = Choices("https://pbx.example.com", "/rec", "UTC", "flat", (str(gateway),))
    written = tmp_path / "recording-gateway.service"
    written.write_text(unit(choices))
    assert systemd_problems(written) == []


def test_one_source_only(tmp_path: Path, freepbx: Demo) -> None:
    done = setup(tmp_path / "root", Path(f"{freepbx.root},{freepbx.root}"), "--layout", "flat")
    assert done.returncode == 2
    assert "setup takes one source in --path" in done.stderr
    assert not (tmp_path / "root").exists()


def test_an_unknown_layout_is_refused_before_anything_is_written(
    tmp_path: Path, freepbx: Demo
) -> None:
    done = setup(tmp_path / "root", freepbx.root, "--layout", "bogus")
    assert done.returncode == 2
    assert "bogus" in done.stderr
    assert not (tmp_path / "root").exists()


def test_links_in_place_of_the_files_are_refused(tmp_path: Path, freepbx: Demo) -> None:
    """A link where the token goes would make setup print (and keep) whatever it points to;
    a linked folder would make it write elsewhere."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret").write_text("not a token for QueueMetrics\n")
    (elsewhere / "secret").chmod(0o600)
    linked_token = tmp_path / "token-link"
    (linked_token / TOKEN_FILE).parent.mkdir(parents=True)
    (linked_token / TOKEN_FILE).symlink_to(elsewhere / "secret")
    done = setup(linked_token, freepbx.root)
    assert done.returncode == 2
    assert "is a symbolic link" in done.stderr
    assert "not a token" not in done.stdout + done.stderr
    linked_folder = tmp_path / "folder-link"
    linked_folder.mkdir()
    (linked_folder / "etc").symlink_to(elsewhere)
    done = setup(linked_folder, freepbx.root)
    assert done.returncode == 2
    assert "is a symbolic link" in done.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == ["secret"]


def test_a_token_written_by_hand_is_kept(tmp_path: Path, freepbx: Demo) -> None:
    """A token file without a final line end (echo -n) holds the same token: nothing to
    replace, and the properties carry it."""
    root = tmp_path / "root"
    (root / TOKEN_FILE).parent.mkdir(parents=True)
    (root / TOKEN_FILE).write_text("hand-made-token-of-some-length")
    (root / TOKEN_FILE).chmod(0o600)
    done = setup(root, freepbx.root)
    assert done.returncode == 0, done.stderr
    assert printed_token(done.stdout) == "hand-made-token-of-some-length"
    assert (root / TOKEN_FILE).read_text() == "hand-made-token-of-some-length"


def test_plain_http_is_served_with_a_warning(tmp_path: Path, freepbx: Demo) -> None:
    done = setup(tmp_path / "root", freepbx.root, url="http://pbx.lan")
    assert done.returncode == 0, done.stderr
    assert "http://pbx.lan is plain HTTP" in done.stderr
    assert "http://pbx.lan {" in (tmp_path / "root" / CADDYFILE).read_text()


def test_young_and_crowded_archives_are_recognised(tmp_path: Path, fusionpbx: Demo) -> None:
    """A new FreePBX has its day folder before its first recording; a FusionPBX may have
    many domains, the first ones (by name) without recordings."""
    young = tmp_path / "young"
    (young / "2026" / "12" / "02").mkdir(parents=True)
    done = setup(tmp_path / "root1", young)
    assert done.returncode == 0, done.stderr
    assert "Proposed layout: freepbx" in done.stdout
    assert "no recording with a call id yet" in done.stdout
    crowded = tmp_path / "crowded"
    shutil.copytree(fusionpbx.root, crowded)
    for n in range(60):
        (crowded / f"aaa{n:02d}.example.com" / "archive").mkdir(parents=True)
    done = setup(tmp_path / "root2", crowded)
    assert done.returncode == 0, done.stderr
    assert "Proposed layout: fusionpbx" in done.stdout


def test_a_copied_archive_is_searched_by_its_folders_days(tmp_path: Path, fusionpbx: Demo) -> None:
    """Files copied or restored from a backup carry today's time, not their call's: the
    timed searches take the day from the folder a recording lies in."""
    copied = tmp_path / "copied"
    shutil.copytree(fusionpbx.root, copied, copy_function=shutil.copy)  # new times
    done = setup(tmp_path / "root", copied)
    assert done.returncode == 0, done.stderr
    searched = re.findall(r"search for call (\S+): (\d+) file\(s\)", done.stdout)
    assert len(searched) == 3
    assert "found nothing" not in done.stdout


def test_the_service_joins_the_group_of_the_recordings(tmp_path: Path, freepbx: Demo) -> None:
    """Recordings readable by their group (asterisk on a PBX): the service user joins it."""
    archive = tmp_path / "monitor"
    shutil.copytree(freepbx.root, archive)
    os.chown(archive, -1, grp.getgrnam("daemon").gr_gid)
    done = setup(tmp_path / "root", archive)
    assert done.returncode == 0, done.stderr
    unit = (tmp_path / "root" / UNIT).read_text().splitlines()
    assert "SupplementaryGroups=daemon" in unit
    sysusers = (tmp_path / "root" / WRITTEN[2]).read_text().splitlines()
    assert "m recording-gateway daemon" in sysusers
    mine = setup(tmp_path / "root2", freepbx.root)  # the demo archive is root's
    assert not any(
        line.startswith("SupplementaryGroups=")
        for line in (tmp_path / "root2" / UNIT).read_text().splitlines()
    )
    assert mine.returncode == 0


def test_a_relative_path_is_written_absolute(tmp_path: Path, freepbx: Demo) -> None:
    """The service runs in /: a folder given relative to where setup ran must be written as
    the folder it names."""
    done = subprocess.run(
        [*GATEWAY, "setup", "--root", str(tmp_path / "root"), "--path", freepbx.root.name, *SITE],
        cwd=freepbx.root.parent,
        capture_output=True,
        text=True,
        input="",
    )
    assert done.returncode == 0, done.stderr
    assert f'"{freepbx.root}"' in (tmp_path / "root" / CONFIG).read_text()


def test_folders_are_reachable_whatever_the_umask(tmp_path: Path, freepbx: Demo) -> None:
    root = tmp_path / "root"
    done = subprocess.run(
        [*GATEWAY, "setup", "--root", str(root), "--path", str(freepbx.root), *SITE],
        capture_output=True,
        text=True,
        input="",
        preexec_fn=lambda: os.umask(0o077),
    )
    assert done.returncode == 0, done.stderr
    for folder in ("etc", "etc/recording-gateway", "etc/caddy", "etc/systemd/system"):
        assert stat.S_IMODE((root / folder).stat().st_mode) == 0o755, folder
    assert stat.S_IMODE((root / TOKEN_FILE).stat().st_mode) == 0o600


def test_a_folder_named_like_an_impossible_day_is_passed_over(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    for day in ("2026/02/31", "2026/02/28"):
        (archive / day).mkdir(parents=True)
        (archive / day / "in-1-2-20260228-101010-1772273410.5.wav").write_bytes(b"RIFF")
    done = setup(tmp_path / "root", archive)
    assert done.returncode == 0, done.stderr
    assert "dated folders YYYY/MM/DD, newest 2026/02/28" in done.stdout
