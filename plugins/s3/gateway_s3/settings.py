"""Where an S3 source is and how to reach it, read from its URL and the store options.

Pure parsing, no SDK and no network: ``S3Settings.from_url`` runs when the gateway starts, and
a configuration mistake is reported then (``ConfigError``) rather than on the first search.

URL form::

    s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME&path_style=1&profile=NAME&...]

The gateway parses it into a ``SourceURL``; the same settings can come from store options
(``--option s3_endpoint=URL``, seen here as ``endpoint``). The URL wins over an option.
Credentials are never read from the URL or the options (they would show in ``ps`` output and
shell history): boto3's own chain finds them (environment, shared files and profiles, container
and instance roles).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from gateway.errors import ConfigError, Forbidden
from gateway.sourceurl import SourceURL
from gateway.storage import check_key

_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
AddressingStyle = Literal["auto", "virtual", "path"]
_ADDRESSING: dict[str, AddressingStyle] = {"path": "path", "virtual": "virtual", "auto": "auto"}
_SECRET_NAMES = frozenset(
    {
        "access_key",
        "access_key_id",
        "aws_access_key_id",
        "secret",
        "secret_key",
        "secret_access_key",
        "aws_secret_access_key",
        "session_token",
        "aws_session_token",
        "password",
    }
)
OPTIONS = frozenset(
    {
        "endpoint",
        "endpoint_url",
        "presign_endpoint",
        "region",
        "path_style",
        "addressing_style",
        "profile",
        "verify",
        "ca_bundle",
        "connect_timeout",
        "read_timeout",
        "max_attempts",
        "max_connections",
    }
)
"""What an S3 source accepts in its query string or as ``s3_NAME`` store options."""

DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 10.0
DEFAULT_MAX_ATTEMPTS = 2
DEFAULT_MAX_CONNECTIONS = 32


@dataclass(frozen=True)
class S3Settings:
    """Everything the S3 store needs to build its client. ``repr`` never shows a secret."""

    bucket: str
    prefix: str = ""
    """Key prefix of the store's root inside the bucket, without slashes at either end."""
    endpoint: str | None = None
    """Endpoint URL (MinIO, Ceph, SeaweedFS...); ``None`` lets boto3 decide (AWS_ENDPOINT_URL,
    the profile's ``endpoint_url``, or AWS itself)."""
    presign_endpoint: str | None = None
    """Endpoint written into presigned URLs, when browsers reach the store by another name."""
    region: str | None = None
    addressing_style: AddressingStyle | None = None
    """``path``, ``virtual`` or ``auto``; ``None`` = path when an endpoint is given, else auto."""
    profile: str | None = None
    verify: bool | str = True
    """TLS verification: ``False``, or a CA bundle path."""
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """Total attempts per request (1 = no retry)."""
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    access_key_id: str | None = field(default=None, repr=False)
    """Explicit credentials, for the Python API only (tests, embedding); never from a URL."""
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: SourceURL) -> S3Settings:
        """Read ``s3://BUCKET/PREFIX?opt=value`` and its ``s3_`` store options; no network."""
        location = url.location.removeprefix("//")
        if "@" in location.split("/", 1)[0]:
            raise ConfigError(
                "an s3: source must not carry credentials in its URL: use the environment "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), a profile or an instance role"
            )
        for where, given in (("URL", url.query), ("options", url.store_options)):
            secret = sorted(_SECRET_NAMES & set(given))
            if secret:
                raise ConfigError(
                    f"an s3: source must not carry {secret[0]} in its {where}: use the "
                    "environment, a profile or an instance role"
                )
        bucket, _, prefix = location.partition("/")
        if not bucket:
            raise ConfigError("an s3: source needs a bucket, as in s3://recordings/pbx1")
        if not _BUCKET.match(bucket):
            raise ConfigError(f"{bucket!r} is not a valid S3 bucket name")
        prefix = prefix.strip("/")
        if prefix:
            try:
                check_key(prefix)
            except Forbidden:
                raise ConfigError(f"the S3 prefix {prefix!r} is not a clean folder path") from None
        url.check_options(OPTIONS)

        endpoint = url.option("endpoint", "endpoint_url")
        if endpoint is not None:
            endpoint = _check_endpoint(endpoint, "endpoint")
        presign = url.option("presign_endpoint")
        if presign is not None:
            presign = _check_endpoint(presign, "presign_endpoint")
        addressing: AddressingStyle | None = None
        style = url.option("addressing_style")
        if style is not None:
            if style not in _ADDRESSING:
                raise ConfigError("addressing_style must be path, virtual or auto")
            addressing = _ADDRESSING[style]
        if url.option("path_style") is not None:
            addressing = "path" if url.flag("path_style") else "virtual"
        verify: bool | str = url.option("ca_bundle") or url.flag("verify", default=True)
        return cls(
            bucket=bucket,
            prefix=prefix,
            endpoint=endpoint,
            presign_endpoint=presign,
            region=url.option("region"),
            addressing_style=addressing,
            profile=url.option("profile"),
            verify=verify,
            connect_timeout=url.number("connect_timeout", DEFAULT_CONNECT_TIMEOUT),
            read_timeout=url.number("read_timeout", DEFAULT_READ_TIMEOUT),
            max_attempts=url.integer("max_attempts", DEFAULT_MAX_ATTEMPTS),
            max_connections=url.integer("max_connections", DEFAULT_MAX_CONNECTIONS),
        )

    @property
    def effective_endpoint(self) -> str | None:
        """The endpoint the user chose, here or in the environment (for descriptions)."""
        if self.endpoint:
            return self.endpoint
        for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
            value = os.environ.get(name)
            if value:
                return value
        return None

    @property
    def effective_addressing(self) -> AddressingStyle:
        if self.addressing_style:
            return self.addressing_style
        return "path" if self.effective_endpoint else "auto"

    def description(self) -> str:
        """``s3://bucket/prefix (endpoint http://host:port)``: no secret, no user info."""
        where = f"s3://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")
        endpoint = self.effective_endpoint
        if endpoint:
            where += f" (endpoint {safe_url(endpoint)})"
        return where


def safe_url(url: str) -> str:
    """The URL without user info, query or fragment: what may be shown to users."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


def _check_endpoint(value: str, name: str) -> str:
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{name} is not a valid URL: {safe_url(value)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http:// or https:// URL, not {safe_url(value)!r}")
    if parts.username or parts.password:
        raise ConfigError(f"{name} must not carry credentials")
    return value
