"""Reading S3 source URLs and options: no SDK, no network."""

from __future__ import annotations

import pytest

from gateway.errors import ConfigError
from gateway.sourceurl import SourceURL
from gateway_s3.settings import S3Settings


def parse(url: str, **options: str) -> S3Settings:
    """Parse the way the gateway does: ``options`` are every ``--option``, of which the S3
    store sees those starting with ``s3_``."""
    return S3Settings.from_url(SourceURL.parse(url, options))


def test_bucket_prefix_and_options() -> None:
    s = parse(
        "s3://recordings/pbx1/monitor/?endpoint=http://127.0.0.1:8333&region=eu-1&path_style=0"
    )
    assert (s.bucket, s.prefix, s.endpoint, s.region) == (
        "recordings", "pbx1/monitor", "http://127.0.0.1:8333", "eu-1",
    )  # fmt: skip
    assert s.effective_addressing == "virtual"
    assert s.description() == "s3://recordings/pbx1/monitor (endpoint http://127.0.0.1:8333)"


def test_defaults_without_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    s = parse("s3:recordings")
    assert (s.bucket, s.prefix, s.endpoint, s.region, s.profile) == (
        "recordings", "", None, None, None,
    )  # fmt: skip
    assert s.effective_addressing == "auto"
    assert (s.connect_timeout, s.read_timeout, s.max_attempts) == (3.0, 10.0, 2)
    assert s.description() == "s3://recordings"


def test_endpoint_from_the_environment_is_described(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://minio.lan:9000/")
    s = parse("s3://recordings/x")
    assert s.description() == "s3://recordings/x (endpoint https://minio.lan:9000)"
    assert s.effective_addressing == "path"


def test_store_options_with_prefix_and_url_wins() -> None:
    s = parse(
        "s3://b1b/p?region=from-url",
        s3_region="from-option",
        s3_profile="rec",
        s3_read_timeout="2.5",
        smb_password_file="/x",  # another store's option: ignored
        encrypt="1",
    )
    assert (s.region, s.profile, s.read_timeout) == ("from-url", "rec", 2.5)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://", "needs a bucket"),
        ("s3:///prefix", "needs a bucket"),
        ("s3://AK:s3cr3tv4lue@bucket/p", "must not carry credentials"),
        ("s3://bucket/p?secret_access_key=s3cr3tv4lue", "must not carry secret_access_key"),
        ("s3://bucket/p?endpont=http://x", "unknown s3: option 'endpont'"),
        ("s3://bucket/p?endpoint=ftp://x", "http:// or https://"),
        ("s3://bucket/p?endpoint=http://u:s3cr3tv4lue@host", "must not carry credentials"),
        ("s3://bucket/a/../b", "not a clean folder path"),
        ("s3://bucket/p?path_style=maybe", "path_style takes 1/0"),
        ("s3://bucket/p?read_timeout=0", "read_timeout takes a positive number"),
        ("s3://bucket/p?max_attempts=2.5", "max_attempts takes a positive whole number"),
        ("s3://bu ck/p", "not a valid S3 bucket name"),
    ],
)
def test_mistakes_are_config_errors_without_secrets(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse(url)
    assert "s3cr3tv4lue" not in str(info.value)


def test_repr_hides_explicit_credentials() -> None:
    from dataclasses import replace

    s = replace(parse("s3://bucket/p"), access_key_id="AKID", secret_access_key="SECRET")
    assert "SECRET" not in repr(s)
    assert "AKID" not in repr(s)


def test_aliases_and_tls_settings() -> None:
    s = parse("s3://b1b/p", s3_endpoint_url="https://minio.lan:9000", s3_verify="off")
    assert (s.endpoint, s.verify) == ("https://minio.lan:9000", False)
    assert parse("s3://b1b/p?ca_bundle=/etc/ca.pem&verify=0").verify == "/etc/ca.pem"
    assert parse("s3://b1b/p?addressing_style=virtual").effective_addressing == "virtual"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"s3_endpont": "http://x"}, "unknown s3: option 's3_endpont'"),
        ({"s3_secret_access_key": "s3cr3tv4lue"}, "must not carry secret_access_key"),
    ],
)
def test_store_option_mistakes_are_config_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse("s3://bucket/p", **options)
    assert "s3cr3tv4lue" not in str(info.value)
