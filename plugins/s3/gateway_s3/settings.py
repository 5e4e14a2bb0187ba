"""Where an S3 source is and how to reach it, read from its URL and the store options.

Pure parsing, no SDK and no network: ``S3Settings.from_url`` runs when the gateway starts, and
a configuration mistake is reported then (``ConfigError``) rather than on the first search.

URL form::

    s3://BUCKET[/PREFIX][?endpoint=URL&region=NAME&path_style=1&profile=NAME&...]

The same settings can come from store options (``--option s3_endpoint=URL``): the ``s3_``
prefix keeps them apart from other stores' options. The URL wins over an option.
Credentials are never read from the URL or the options (they would show in ``ps`` output and
shell history): boto3's own chain finds them (environment, shared files and profiles, container
and instance roles).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from gateway.errors import ConfigError, Forbidden
from gateway.storage import check_key

OPTION_PREFIX = "s3_"
_BUCKET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
AddressingStyle = Literal["auto", "virtual", "path"]
_ADDRESSING: dict[str, AddressingStyle] = {"path": "path", "virtual": "virtual", "auto": "auto"}
_SECRET_NAMES = {
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
    def from_url(cls, url: str, options: Mapping[str, str]) -> S3Settings:
        """Parse ``s3://BUCKET/PREFIX?opt=value`` plus ``s3_``-prefixed store options."""
        _, _, rest = url.partition(":")
        location, _, query = rest.partition("?")
        location = location.removeprefix("//")
        if "@" in location.split("/", 1)[0]:
            raise ConfigError(
                "an s3: source must not carry credentials in its URL: use the environment "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), a profile or an instance role"
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

        values: dict[str, str] = {}
        for key, value in options.items():
            if key.startswith(OPTION_PREFIX):
                values[key.removeprefix(OPTION_PREFIX)] = value
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key in _SECRET_NAMES:
                raise ConfigError(
                    f"an s3: source must not carry {key} in its URL: use the environment, "
                    "a profile or an instance role"
                )
            if key not in _KNOWN:
                raise ConfigError(
                    f"unknown s3: URL option {key!r} (known: {', '.join(sorted(_KNOWN))})"
                )
            values[key] = value
        return cls._from_values(bucket, prefix, values)

    @classmethod
    def _from_values(cls, bucket: str, prefix: str, values: Mapping[str, str]) -> S3Settings:
        def text(name: str, *aliases: str) -> str | None:
            for n in (name, *aliases):
                if values.get(n):
                    return values[n]
            return None

        endpoint = text("endpoint", "endpoint_url")
        if endpoint is not None:
            endpoint = _check_endpoint(endpoint, "endpoint")
        presign = text("presign_endpoint")
        if presign is not None:
            presign = _check_endpoint(presign, "presign_endpoint")
        addressing: AddressingStyle | None = None
        style = text("addressing_style")
        if style is not None:
            if style not in _ADDRESSING:
                raise ConfigError("addressing_style must be path, virtual or auto")
            addressing = _ADDRESSING[style]
        path_style = text("path_style")
        if path_style is not None:
            addressing = "path" if _flag(path_style, "path_style") else "virtual"
        verify: bool | str = True
        ca_bundle = text("ca_bundle")
        if ca_bundle is not None:
            verify = ca_bundle
        elif text("verify") is not None:
            verify = _flag(values["verify"], "verify")
        return cls(
            bucket=bucket,
            prefix=prefix,
            endpoint=endpoint,
            presign_endpoint=presign,
            region=text("region"),
            addressing_style=addressing,
            profile=text("profile"),
            verify=verify,
            connect_timeout=_number(text("connect_timeout"), DEFAULT_CONNECT_TIMEOUT, "timeout"),
            read_timeout=_number(text("read_timeout"), DEFAULT_READ_TIMEOUT, "read_timeout"),
            max_attempts=int(_number(text("max_attempts"), DEFAULT_MAX_ATTEMPTS, "max_attempts")),
            max_connections=int(
                _number(text("max_connections"), DEFAULT_MAX_CONNECTIONS, "max_connections")
            ),
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


_KNOWN = {
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


def _flag(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1/0, true/false, yes/no or on/off, not {value!r}")


def _number(value: str | None, default: float, name: str) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {value!r}") from None
    if not number > 0:
        raise ConfigError(f"{name} must be more than 0")
    return number
