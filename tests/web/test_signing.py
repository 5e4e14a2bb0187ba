"""Link signing: payload, expiry with leeway, rotation, key files."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import subprocess
from pathlib import Path

import pytest
from itsdangerous import Signer

from gateway.errors import ConfigError, LinkExpired, LinkInvalid
from gateway.signing import LEEWAY_SECONDS, LinkSigner, read_key_file
from tests.conftest import FakeClock, run_gateway

KEY1 = "k1-0123456789-" + "x" * 40
KEY2 = "k2-9876543210-" + "y" * 40


def test_round_trip_and_expiry_with_leeway() -> None:
    clock = FakeClock()
    signer = LinkSigner([KEY1], clock=clock)
    token, target = signer.sign("file:/srv/rec", "2026/03/07/a.wav", 300)
    assert target.expires == int(clock.now) + 300
    assert signer.verify(token) == target
    clock.now += 300 + LEEWAY_SECONDS
    assert signer.verify(token) == target
    clock.now += 1
    with pytest.raises(LinkExpired):
        signer.verify(token)


def test_the_payload_is_bound_to_the_key() -> None:
    token, _ = LinkSigner([KEY1]).sign("s", "k", 60)
    with pytest.raises(LinkInvalid):
        LinkSigner([KEY2]).verify(token)
    with pytest.raises(LinkInvalid):
        LinkSigner.random().verify(token)


def test_rotation_first_key_signs_every_key_verifies() -> None:
    old_token, _ = LinkSigner([KEY1]).sign("s", "k", 60)
    rotated = LinkSigner([KEY2, KEY1])
    assert rotated.verify(old_token).key == "k"
    new_token, _ = rotated.sign("s", "k", 60)
    assert LinkSigner([KEY2]).verify(new_token).key == "k"
    with pytest.raises(LinkInvalid):
        LinkSigner([KEY1]).verify(new_token)


def test_key_file(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"# comment\n\n  {KEY1}  \n{KEY2}\n")
    assert read_key_file(path) == [KEY1, KEY2]
    path.write_text("# nothing\n")
    with pytest.raises(ConfigError, match="holds no key"):
        read_key_file(path)
    path.write_text("tooshort\n")
    with pytest.raises(ConfigError, match="at least 32") as info:
        read_key_file(path)
    assert "tooshort" not in str(info.value)


def test_links_are_signed_with_hmac_sha256() -> None:
    token, _ = LinkSigner([KEY1]).sign("s", "k", 60)
    value, signature = token.rsplit(".", 1)
    assert len(base64.urlsafe_b64decode(signature + "=")) == 32  # SHA-1 would be 20 bytes
    sha256 = Signer(KEY1, salt="gateway.files.v2", digest_method=hashlib.sha256)
    assert sha256.unsign(token).decode() == value


@pytest.mark.parametrize(
    "key", ["k" * 40, "ab" * 20, "0123" * 10, "abcdefg" * 6], ids=["one", "two", "four", "seven"]
)
def test_trivially_weak_keys_are_refused_without_quoting_them(tmp_path: Path, key: str) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{KEY1}\n{key}\n")
    with pytest.raises(
        ConfigError, match="line 2: a link key must hold at least 8 different"
    ) as info:
        read_key_file(path)
    assert key not in str(info.value)


def test_a_key_file_others_may_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{KEY1}\n")
    for mode in (0o666, 0o620, 0o602):
        path.chmod(mode)
        with pytest.raises(ConfigError, match="may be written by others") as info:
            read_key_file(path)
        assert KEY1 not in str(info.value)


def test_a_key_file_others_may_read_is_read_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{KEY1}\n")
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        assert read_key_file(path) == [KEY1]
    assert caplog.records == []
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert read_key_file(path) == [KEY1]
    assert "may be read by any user (mode 0644)" in caplog.text
    assert KEY1 not in caplog.text


def test_a_fifo_as_key_file_is_refused_at_once(tmp_path: Path) -> None:
    """``gateway serve`` used to wait for a writer on the FIFO for ever."""
    fifo = tmp_path / "keys"
    os.mkfifo(fifo, 0o600)
    try:
        result = run_gateway(
            "serve", "--path", str(tmp_path), "--token", "t" * 20, "--link-key-file", str(fifo),
            timeout=20,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("gateway serve hung on a FIFO given as --link-key-file")
    assert result.returncode == 2
    assert b"cannot read the link key file" in result.stderr
    assert b"not a regular file" in result.stderr
