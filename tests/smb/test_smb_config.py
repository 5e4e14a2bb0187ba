"""Reading smb:// sources and the SMB key rules (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError, Forbidden
from gateway.plugins import load_plugins
from gateway.sourceurl import SourceURL
from gateway_smb.config import SmbLocation, smb_segments
from gateway_smb.config import parse_location as parse_url
from tests.conftest import run_gateway

SECRET = "s3cr3t-P@ss"


def parse_location(
    url: str, options: dict[str, str], environ: dict[str, str] | None = None
) -> SmbLocation:
    """Parse the way the gateway does: ``options`` are every ``--option``, of which the SMB
    store sees those starting with ``smb_``."""
    return parse_url(SourceURL.parse(url, options, environ={} if environ is None else environ))


def test_url_parts_and_safe_description() -> None:
    loc = parse_location(
        "smb://alice:s3cr3t-P%40ss@NAS.example:4455/recordings/monitor/x?encrypt=1&timeout=2.5",
        {},
        environ={},
    )
    assert (loc.host, loc.port, loc.share, loc.root) == (
        "nas.example",
        4455,
        "recordings",
        ("monitor", "x"),
    )
    assert (loc.user, loc.password, loc.encrypt, loc.timeout) == ("alice", SECRET, True, 2.5)
    assert loc.description == "smb://alice@nas.example:4455/recordings/monitor/x"
    assert loc.unc(["2025", "a.wav"]) == r"\\nas.example\recordings\monitor\x\2025\a.wav"
    assert SECRET not in repr(loc)
    assert loc.username == "alice"


def test_defaults_and_domain() -> None:
    loc = parse_location("smb://CORP;bob@nas/rec", {}, environ={})
    assert (loc.port, loc.timeout, loc.encrypt, loc.domain) == (445, 5.0, False, "CORP")
    assert loc.username == "CORP\\bob"
    assert loc.description == "smb://CORP;bob@nas:445/rec"
    loc = parse_location("smb://bob@nas/rec?domain=EU", {"smb_domain": "US"}, environ={})
    assert loc.username == "EU\\bob"  # the URL wins over the store option
    assert parse_location("smb://bob@nas/rec", {"smb_domain": "US"}, environ={}).domain == "US"


def test_password_sources_in_order(tmp_path: Path) -> None:
    pw_file = tmp_path / "pw"
    pw_file.write_text("from-file\n")
    env = {"GATEWAY_SMB_PASSWORD": "from-env"}
    options = {"smb_password_file": str(pw_file)}
    assert parse_location("smb://u:from-url@h/s", options, environ=env).password == "from-url"
    assert parse_location("smb://u@h/s", options, environ=env).password == "from-file"
    assert parse_location("smb://u@h/s", {}, environ=env).password == "from-env"
    assert parse_location("smb://u@h/s", {}, environ={}).password is None


def test_missing_or_empty_password_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="password file"):
        parse_location("smb://u@h/s", {"smb_password_file": str(tmp_path / "nope")}, environ={})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=r"password file .* is empty"):
        parse_location("smb://u@h/s", {"smb_password_file": str(tmp_path / "empty")}, environ={})


def test_a_password_file_keeps_spaces_but_not_its_line_end(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(" spaced pw \r\n")
    options = {"smb_password_file": str(tmp_path / "pw")}
    assert parse_location("smb://u@h/s", options).password == " spaced pw "


def test_options_of_other_stores_are_ignored_and_unknown_smb_options_refused() -> None:
    options = {"s3_region": "eu-1", "smb_timeout": "2", "smb_io_timeout": "7"}
    loc = parse_location("smb://u@h/s", options)
    assert (loc.timeout, loc.io_timeout, loc.request_timeout) == (2.0, 7.0, 7.0)
    with pytest.raises(ConfigError, match="unknown smb: option 'smb_timout'"):
        parse_location("smb://u@h/s", {"smb_timout": "2"})


def test_the_password_is_never_read_from_the_query() -> None:
    with pytest.raises(ConfigError, match="unknown smb: option 'password'") as caught:
        parse_location("smb://u@h/s?password=s3cr3t-in-query", {})
    assert "s3cr3t-in-query" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "smb://u:pw@h",  # no share
        "smb:/h/s",
        "smb://u:pw@h/s?encrypt=maybe",
        "smb://u:pw@h/s?timeout=-1",
        "smb://u:pw@h/s?colour=blue",
        "smb://u:pw@h/s/CON",
        "smb://u:pw@h:99999/s",
        "smb://u:pw@h/s#x",
        "smb://u:pw@h/s?domain=D#x",
    ],
)
def test_bad_urls_are_config_errors_without_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_location(url, {}, environ={})
    assert ":pw@" not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "smb://rec:Se@cret99@nas.local:99999/calls",  # an '@' in it, and a bad port
        "smb://rec:Secret99/x@nas.local/calls/CON",
    ],
)
def test_passwords_with_odd_characters_never_show(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_location(url, {}, environ={})
    assert "cret99" not in str(caught.value)


@pytest.mark.parametrize("password", ["Se/cret99", "Se?cret99", "Se#cret99", "Se@cret99"])
def test_passwords_with_odd_characters_need_no_encoding(password: str) -> None:
    loc = parse_location(f"smb://rec:{password}@nas.local/calls?encrypt=1", {}, environ={})
    assert (loc.user, loc.password, loc.host, loc.share, loc.encrypt) == (
        "rec",
        password,
        "nas.local",
        "calls",
        True,
    )
    assert "cret99" not in loc.description + repr(loc)


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd",
        "a/../../b.wav",
        "a\\..\\b.wav",
        "a.wav::$DATA",
        "a.wav:stream",
        "folder./a.wav",
        "a.wav.",
        "a.wav ",
        "CON",
        "con.wav",
        "2025/NUL.txt",
        "LPT1",
        "com9.wav",
        "COM\u00b9",
        "AUX .wav",
        "a*.wav",
        "a?.wav",
        "/abs.wav",
        "a\x00.wav",
    ],
)
def test_unsafe_keys_are_refused(key: str) -> None:
    with pytest.raises(Forbidden):
        smb_segments(key)


@pytest.mark.parametrize(
    "key", ["a.wav", "2025/03/07/in-1-2-3.wav", "CONSOLE.wav", "com10.wav", "x.y.z", ".hidden"]
)
def test_plain_keys_are_accepted(key: str) -> None:
    assert smb_segments(key) == key.split("/")


def test_plugin_registration_and_no_network_in_factory() -> None:
    plugins = load_plugins()
    store_type = plugins.store_type("smb")
    assert plugins.scheme_for_backend("cifs") == "smb"
    # an unroutable host: building the store must not try to reach it
    store = store_type.factory(SourceURL.parse(f"smb://u:{SECRET}@192.0.2.1/share/dir"))
    assert SECRET not in store.description
    assert SECRET not in repr(store)
    store.close()


def test_plugins_command_lists_smb() -> None:
    done = run_gateway("plugins")
    assert done.returncode == 0, done.stderr
    assert b"smb" in done.stdout
