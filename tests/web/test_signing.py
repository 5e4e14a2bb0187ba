"""Link signing: payload, expiry with leeway, rotation, key files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError, LinkExpired, LinkInvalid
from gateway.signing import LEEWAY_SECONDS, LinkSigner, read_key_file
from tests.conftest import FakeClock

KEY1 = "k1-" + "x" * 40
KEY2 = "k2-" + "y" * 40


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
