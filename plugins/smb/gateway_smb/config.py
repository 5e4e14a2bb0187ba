"""Reading an ``smb://`` source and the SMB rules for keys. Imports nothing from smbprotocol.

URL form: ``smb://[[DOMAIN;]USER[:PASSWORD]@]HOST[:PORT]/SHARE[/PATH...][?OPTIONS]``, with
``OPTIONS`` among ``encrypt=1|0``, ``timeout=SECONDS`` (connect and log on, default 5),
``io_timeout=SECONDS`` (one request on an established session, default ``max(30, 6 x
timeout)``), ``domain=NAME``, ``connections=N`` (pool size, default 4). The same options may
be given to every SMB source at once as store options ``smb_encrypt``, ``smb_timeout``,
``smb_io_timeout``, ``smb_domain``, ``smb_connections``; the URL wins. The password comes from the
URL, else from the file named by the store option ``smb_password_file``, else from the
environment variable ``GATEWAY_SMB_PASSWORD``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from gateway.errors import ConfigError, Forbidden
from gateway.storage import check_key

PASSWORD_ENV = "GATEWAY_SMB_PASSWORD"  # noqa: S105 (a variable name)
PASSWORD_FILE_OPTION = "smb_password_file"  # noqa: S105 (an option name)
DEFAULT_PORT = 445
DEFAULT_TIMEOUT = 5.0
DEFAULT_CONNECTIONS = 4

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_URL_OPTIONS = ("encrypt", "timeout", "io_timeout", "domain", "connections")

# Names Windows reserves in every folder, with or without an extension ("CON", "con.wav").
_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|(COM|LPT)[0-9¹²³])$", re.IGNORECASE)
# Characters an SMB path segment cannot hold (":" also opens alternate data streams).
_SMB_BAD_CHARS = frozenset('\\:<>"|?*')


@dataclass(frozen=True)
class SmbLocation:
    """Where an SMB source is and how to log on. ``repr`` and ``description`` hide the password."""

    host: str
    port: int
    share: str
    root: tuple[str, ...]
    """Folders below the share that the store is rooted at."""
    user: str | None
    password: str | None = field(default=None, repr=False)
    domain: str | None = None
    encrypt: bool = False
    timeout: float = DEFAULT_TIMEOUT
    """Seconds to connect and log on."""
    io_timeout: float | None = None
    """Seconds one request on an established session may take; None: max(30, 6 x timeout)."""
    connections: int = DEFAULT_CONNECTIONS

    @property
    def request_timeout(self) -> float:
        return self.io_timeout if self.io_timeout is not None else max(30.0, 6 * self.timeout)

    @property
    def username(self) -> str | None:
        """The logon name smbprotocol expects: ``DOMAIN\\user`` or ``user``."""
        if self.user is None:
            return None
        return f"{self.domain}\\{self.user}" if self.domain else self.user

    @property
    def description(self) -> str:
        """``smb://[DOMAIN;]user@host:port/share/path``: safe to show, never the password."""
        who = ""
        if self.user is not None:
            who = (f"{self.domain};" if self.domain else "") + f"{self.user}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"smb://{who}{host}:{self.port}/" + "/".join((self.share, *self.root))

    def unc(self, parts: Sequence[str] = ()) -> str:
        """The UNC path of a key's segments below the root: ``\\\\host\\share\\root\\key``."""
        return "\\".join(("", "", self.host, self.share, *self.root, *parts))


def smb_segments(key: str, *, allow_root: bool = False) -> list[str]:
    """``check_key`` plus what SMB servers would read as something else than a plain name.

    Refused with ``Forbidden``: ``:`` (alternate data streams such as ``::$DATA``), wildcard
    and other characters Windows forbids in names, a segment ending in a dot or a space (the
    server strips them, so ``a.wav.`` would be ``a.wav``), and reserved device names (``CON``,
    ``NUL``, ``COM1``, ``LPT1.wav`` ...).
    """
    parts = check_key(key, allow_root=allow_root)
    for part in parts:
        if (
            any(c in _SMB_BAD_CHARS for c in part)
            or part[-1] in ". "
            or _RESERVED.match(part.split(".", 1)[0].rstrip(" "))
        ):
            raise Forbidden(f"refused key {key!r}: not a plain SMB file name")
    return parts


def parse_location(
    url: str, options: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> SmbLocation:
    """Read an ``smb://`` URL and the store options into an ``SmbLocation``; no network.

    Raise ``ConfigError`` for a malformed URL or option (the message never holds the password).
    """
    env = os.environ if environ is None else environ
    scheme, _, rest = url.partition(":")
    if scheme.lower() != "smb" or not rest.startswith("//"):
        raise ConfigError("an SMB source looks like smb://USER@HOST[:PORT]/SHARE/PATH")
    try:
        parts = urlsplit("smb:" + rest)
        host = parts.hostname
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"cannot read the SMB source {_redacted(url)!r}") from None
    if not host:
        raise ConfigError(f"the SMB source {_redacted(url)!r} names no host")
    if parts.fragment:
        raise ConfigError(f"the SMB source {_redacted(url)!r} has a '#' in it")

    segments = [unquote(s) for s in parts.path.split("/") if s]
    if not segments:
        raise ConfigError(f"the SMB source {_redacted(url)!r} names no share: smb://HOST/SHARE")
    try:
        smb_segments("/".join(segments))
    except Forbidden:
        raise ConfigError(f"the SMB source {_redacted(url)!r} has an invalid path") from None

    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(query) - set(_URL_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown SMB option {unknown[0]!r} (known: {', '.join(_URL_OPTIONS)})")

    def option(name: str) -> str | None:
        return query.get(name, options.get(f"smb_{name}"))

    user = unquote(parts.username) if parts.username is not None else None
    domain = option("domain") or None
    if user is not None and ";" in user:  # smb://DOMAIN;user@host, the SMB URI convention
        domain, _, user = user.partition(";")
    if user == "":
        user = None

    password = unquote(parts.password) if parts.password is not None else None
    if password is None and options.get(PASSWORD_FILE_OPTION):
        password = _read_password_file(options[PASSWORD_FILE_OPTION])
    if password is None:
        password = env.get(PASSWORD_ENV)

    return SmbLocation(
        host=host,
        port=port,
        share=segments[0],
        root=tuple(segments[1:]),
        user=user,
        password=password,
        domain=domain,
        encrypt=_flag("encrypt", option("encrypt")),
        timeout=_positive("timeout", option("timeout"), DEFAULT_TIMEOUT, float),
        io_timeout=_positive("io_timeout", option("io_timeout"), 0, float) or None,
        connections=int(_positive("connections", option("connections"), DEFAULT_CONNECTIONS, int)),
    )


def _flag(name: str, value: str | None) -> bool:
    if value is None or value == "":
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigError(f"the SMB option {name} takes 1 or 0, not {value!r}")


def _positive(name: str, value: str | None, default: float, kind: type[float] | type[int]) -> float:
    if value is None or value == "":
        return default
    try:
        number = kind(value)
    except ValueError:
        number = 0
    if number <= 0:
        raise ConfigError(f"the SMB option {name} takes a positive number, not {value!r}")
    return number


def _read_password_file(name: str) -> str:
    path = Path(name).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the SMB password file {path}: {exc.strerror}") from None
    return text.removesuffix("\n").removesuffix("\r")


def _redacted(url: str) -> str:
    """The URL without the password in its user part.

    The user part ends at the *last* ``@``: a password may hold ``/`` or ``@`` unencoded, and
    hiding a little too much of an odd path is better than showing a password.
    """
    scheme, sep, rest = url.partition("//")
    userinfo, at, after = rest.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    return f"{scheme}{sep}{userinfo}{at}{after}"
