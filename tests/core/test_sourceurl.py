"""SourceURL: how a source's URL and the store options reach a store factory."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.sourceurl import (
    SourceURL,
    parse_flag,
    parse_positive,
    redact_url,
    without_password,
)


def test_parts_of_a_url_with_authority() -> None:
    url = SourceURL.parse("SMB://rec:p%40ss@NAS.example:4455/calls/pbx1?encrypt=1&x=a%20b")
    assert url.scheme == "smb"
    assert url.has_authority
    assert (url.user, url.password, url.host, url.port) == ("rec", "p@ss", "nas.example", 4455)
    assert url.path == "/calls/pbx1"
    assert dict(url.query) == {"encrypt": "1", "x": "a b"}


def test_a_url_without_authority_is_a_path() -> None:
    url = SourceURL.parse("file:/var/spool/asterisk/monitor")
    assert not url.has_authority
    assert (url.user, url.password, url.host, url.port) == (None, None, None, None)
    assert url.path == url.location == "/var/spool/asterisk/monitor"


def test_only_the_schemes_own_options_are_kept_without_their_prefix() -> None:
    options = {"smb_timeout": "5", "s3_region": "eu-1", "freepbx_x": "1", "timeout": "9"}
    url = SourceURL.parse("smb://nas/share", options)
    assert dict(url.store_options) == {"timeout": "5"}


def test_the_url_query_wins_over_store_options() -> None:
    url = SourceURL.parse("s3://b/p?region=from-url", {"s3_region": "opt", "s3_profile": "p"})
    assert url.option("region") == "from-url"
    assert url.option("profile") == "p"
    assert url.option("missing") is None
    # an alias is tried after the name, in the query first
    url = SourceURL.parse("s3://b/p?endpoint_url=http://q", {"s3_endpoint": "http://o"})
    assert url.option("endpoint", "endpoint_url") == "http://q"
    # an empty value counts as not given
    assert SourceURL.parse("s3://b?region=", {"s3_region": "opt"}).option("region") == "opt"


def test_secret_reads_the_file_option_then_the_environment(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text(" from file \n")
    env = {"GATEWAY_XS_PASSWORD": "from-env"}
    with_file = SourceURL.parse("xs://h/s", {"xs_password_file": str(tmp_path / "pw")}, environ=env)
    assert with_file.secret("password", env="GATEWAY_XS_PASSWORD") == " from file "
    from_env = SourceURL.parse("xs://h/s", environ=env)
    assert from_env.secret("password", env="GATEWAY_XS_PASSWORD") == "from-env"
    assert from_env.secret("password") is None  # no env given: no default variable
    assert (
        SourceURL.parse("xs://h/s", environ={}).secret("password", env="GATEWAY_XS_PASSWORD")
        is None
    )


def test_secret_is_never_read_from_the_query_or_plain_options() -> None:
    url = SourceURL.parse("xs://h/s?password=in-query", {"xs_password": "in-option"}, environ={})
    assert url.secret("password", env="GATEWAY_XS_PASSWORD") is None


def test_an_unreadable_or_empty_secret_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("hunter2-secret\n")
    (tmp_path / "empty").write_text("\n")
    for name, message in (("nope", "cannot read"), ("empty", "is empty")):
        url = SourceURL.parse("xs://h/s", {"xs_password_file": str(tmp_path / name)}, environ={})
        with pytest.raises(ConfigError, match=message) as caught:
            url.secret("password", what="X password file")
        assert "X password file" in str(caught.value)
        assert str(tmp_path / name) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("smb://rec:Se/cret99@nas.local/calls", "cret99"),
        ("smb://rec:Se@cret99@nas.local:99999/calls", "cret99"),
        ("smb://rec:Secret99/x@nas.local/calls/CON", "cret99"),
        ("smb://rec:plain-Secret99@nas.local/calls?encrypt=1", "Secret99"),
        ("smb://rec:Se?cret99@nas.local/calls", "cret99"),
        ("smb://rec:Se#c?ret99@nas.local/calls", "ret99"),
    ],
)
def test_redacted_hides_passwords_with_slashes_and_at_signs(text: str, secret: str) -> None:
    url = SourceURL.parse(text)
    assert secret not in url.redacted
    assert url.redacted.startswith("smb://rec:***@")
    assert secret not in redact_url(text)
    assert secret not in repr(url)


def test_redacted_keeps_what_is_not_secret() -> None:
    assert (
        SourceURL.parse("smb://rec@nas/calls?encrypt=1").redacted == "smb://rec@nas/calls?encrypt=1"
    )
    assert redact_url("file:/var/rec") == "file:/var/rec"


@pytest.mark.parametrize(
    "text", ["smb://rec:Se@cret99@nas:99999/calls", "smb://rec:Se?cret99@nas:x/calls"]
)
def test_a_bad_port_is_a_config_error_without_the_password(text: str) -> None:
    url = SourceURL.parse(text)
    with pytest.raises(ConfigError) as caught:
        _ = url.port
    assert "cret99" not in str(caught.value)


def test_check_options_refuses_unknown_url_and_store_options() -> None:
    SourceURL.parse("smb://h/s?timeout=1", {"smb_domain": "D"}).check_options(["timeout", "domain"])
    with pytest.raises(ConfigError, match="unknown smb: option 'colour'"):
        SourceURL.parse("smb://h/s?colour=blue").check_options(["timeout"])
    with pytest.raises(ConfigError, match="unknown smb: option 'smb_timout'") as caught:
        SourceURL.parse("smb://h/s", {"smb_timout": "1"}).check_options(["timeout"])
    assert "smb_timeout" in str(caught.value)  # the known ones are listed, as typed
    with pytest.raises(ConfigError, match=r"known: none"):
        SourceURL.parse("file:/x?a=1").check_options(())


@pytest.mark.parametrize("value", ["maybe", "2", "", "yes please"])
def test_flags_refuse_garbage(value: str) -> None:
    with pytest.raises(ConfigError, match="encrypt"):
        parse_flag(value, "encrypt")


def test_flags_numbers_and_integers() -> None:
    url = SourceURL.parse("xs://h/s?a=YES&b=off&n=2.5&i=3")
    assert (url.flag("a"), url.flag("b"), url.flag("none"), url.flag("none", True)) == (
        True, False, False, True,
    )  # fmt: skip
    assert (url.number("n", 1.0), url.number("none", 1.0)) == (2.5, 1.0)
    assert (url.integer("i", 1), url.integer("none", 7)) == (3, 7)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "inf", "nan"])
def test_numbers_refuse_garbage(value: str) -> None:
    with pytest.raises(ConfigError, match="timeout"):
        parse_positive(value, "timeout")
    with pytest.raises(ConfigError, match="timeout"):
        SourceURL.parse(f"xs://h/s?timeout={value}").number("timeout", 5.0)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "2.5", "1e3"])
def test_integers_refuse_garbage(value: str) -> None:
    with pytest.raises(ConfigError, match="connections"):
        SourceURL.parse(f"xs://h/s?connections={value}").integer("connections", 4)


def test_a_text_without_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="starts with its scheme"):
        SourceURL.parse("/var/rec")


@pytest.mark.parametrize(
    ("text", "user", "password", "host", "path", "query"),
    [
        (
            "smb://rec:Se?cret99@nas/calls?encrypt=1",
            "rec",
            "Se?cret99",
            "nas",
            "/calls",
            {"encrypt": "1"},
        ),
        ("smb://nas/share/a@b?encrypt=1", None, None, "nas", "/share/a@b", {"encrypt": "1"}),
        ("smb://nas:445/share/a@b", None, None, "nas", "/share/a@b", {}),
        ("smb://rec:pw@nas/share?domain=a@b", "rec", "pw", "nas", "/share", {"domain": "a@b"}),
        (
            "s3://bucket/p?endpoint=http://u:s3cr3tv4lue@host",
            None,
            None,
            "bucket",
            "/p",
            {"endpoint": "http://u:s3cr3tv4lue@host"},
        ),
    ],
)
def test_the_user_part_query_and_path_are_told_apart(
    text: str,
    user: str | None,
    password: str | None,
    host: str,
    path: str,
    query: dict[str, str],
) -> None:
    url = SourceURL.parse(text)
    assert (url.user, url.password, url.host, url.path, dict(url.query)) == (
        user,
        password,
        host,
        path,
        query,
    )
    for secret in ("cret99", "s3cr3tv4lue"):
        assert secret not in url.redacted


@pytest.mark.parametrize(
    "text",
    [
        "smb://rec:pw@nas/calls/team@site",
        "smb://rec:p%40ss@nas:445/calls?timeout=5",
        "smb://rec:a/b?c@nas/calls",
        "smb://rec@nas/calls",
        "smb://nas/calls",
    ],
)
def test_without_password_keeps_everything_else(text: str) -> None:
    """Setup writes the share's URL without its password: the same user, host, port, path
    and options as ``SourceURL.parse`` reads in the URL as given."""
    given, kept = SourceURL.parse(text), SourceURL.parse(without_password(text))
    assert kept.password is None
    assert (kept.user, kept.host, kept.port, kept.path, kept.query) == (
        given.user,
        given.host,
        given.port,
        given.path,
        given.query,
    )
