"""``gateway setup`` for recordings on a real Samba share: the layout is recognised over SMB,
and the password moves from the URL into a secret file the written configuration names."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

from tests.conftest import run_gateway
from tests.smb.conftest import CALL_DAY, Share

CONFIG = Path("etc/recording-gateway/gateway.toml")
PASSWORD_FILE = Path("etc/recording-gateway/smb-password")


def test_setup_on_a_share_keeps_its_password_in_a_secret_file(tmp_path: Path, share: Share) -> None:
    password = share.server.password
    done = run_gateway(
        *("setup", "--root", str(tmp_path), "--public-url", "https://pbx.example.com"),
        *("--path", share.url("freepbx"), "--timezone", "UTC"),
        input=b"",
    )
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, out
    assert "Proposed layout: freepbx" in out
    searched = re.findall(r"search for call (\S+): (\d+) file\(s\)", out)
    assert searched
    assert all(int(count) >= 1 for _, count in searched)
    assert password not in out
    config = (tmp_path / CONFIG).read_text()
    assert password not in config
    assert share.server.url("freepbx") in config  # the share's URL, without the password
    assert 'smb_password_file = "/etc/recording-gateway/smb-password"' in config
    secret = tmp_path / PASSWORD_FILE
    assert secret.read_text() == password + "\n"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    # the written configuration finds the call with that file
    found = run_gateway(
        *("search", "--config", str(tmp_path / CONFIG), "--json"),
        *("--smb-password-file", str(secret)),
        *("--callid", "1741342500.17", "--timestamp", CALL_DAY),
    )
    assert found.returncode == 0, found.stderr
    assert len(json.loads(found.stdout)) == 2


def test_setup_again_on_the_share_uses_the_password_file(tmp_path: Path, share: Share) -> None:
    """Run again with the URL of the written configuration (no password in it): setup reads
    the password file it wrote, surveys the share and has nothing to change."""
    first = [*("setup", "--root", str(tmp_path), "--public-url", "https://pbx.example.com")]
    first += ["--path", share.url("freepbx"), "--timezone", "UTC"]
    done = run_gateway(*first, input=b"")
    assert done.returncode == 0, done.stderr
    again = [*first[:-4], "--path", share.server.url("freepbx"), "--timezone", "UTC"]
    done = run_gateway(*again, input=b"")
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "Proposed layout: freepbx" in out
    assert "Nothing to change" in out
