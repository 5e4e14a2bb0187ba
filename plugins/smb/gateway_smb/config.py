"""Reading an ``smb://`` source and the SMB rules for keys. Imports nothing from smbprotocol.

URL form: ``smb://[[DOMAIN;]USER[:PASSWORD]@]HOST[:PORT]/SHARE[/PATH...][?OPTIONS]``, with
``OPTIONS`` among ``encrypt=1|0``, ``timeout=SECONDS`` (connect and log on, default 5),
``io_timeout=SECONDS`` (one request on an established session, default ``max(30, 6 x
timeout)``), ``domain=NAME``, ``connections=N`` (pool size, default 4). The gateway parses the
URL into a ``SourceURL``; the same options may be given to every SMB source at once as store
options ``--option smb_encrypt=1``, ``smb_timeout``, ``smb_io_timeout``, ``smb_domain``,
``smb_connections``; the URL wins. The password comes from the URL, else from the file named
by the store option ``smb_password_file`` (``--smb-password-file``), else from the environment
variable ``GATEWAY_SMB_PASSWORD``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from gateway.errors import ConfigError, Forbidden
from gateway.sourceurl import SourceURL
from gateway.storage import check_key

PASSWORD_ENV = "GATEWAY_SMB_PASSWORD"  # noqa: S105 (a variable name)
DEFAULT_PORT = 445
DEFAULT_TIMEOUT = 5.0
DEFAULT_CONNECTIONS = 4

OPTIONS = ("encrypt", "timeout", "io_timeout", "domain", "connections")
"""What an SMB source accepts in its query string or as ``smb_NAME`` store options."""
_KNOWN = (*OPTIONS, "password_file")

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


def parse_location(url: SourceURL) -> SmbLocation:
    """Read an ``smb://`` source URL (with its store options) into an ``SmbLocation``; no
    network.

    Raise ``ConfigError`` for a malformed URL or option (the message never holds the password).
    """
    if url.scheme != "smb" or not url.has_authority:
        raise ConfigError("an SMB source looks like smb://USER@HOST[:PORT]/SHARE/PATH")
    shown = url.redacted
    _ = url.host  # reads the authority: a '#' outside the password is refused there
    if any("#" in k + v for k, v in url.query.items()):
        raise ConfigError(f"the SMB source {shown!r} has a '#' in it")
    host = url.host  # ConfigError (without the password) for a port that is not a number
    if not host:
        raise ConfigError(f"the SMB source {shown!r} names no host")
    segments = [unquote(s) for s in url.path.split("/") if s]
    if not segments:
        raise ConfigError(f"the SMB source {shown!r} names no share: smb://HOST/SHARE")
    try:
        smb_segments("/".join(segments))
    except Forbidden:
        raise ConfigError(f"the SMB source {shown!r} has an invalid path") from None
    url.check_options(_KNOWN)

    user = url.user
    domain = url.option("domain")
    if user is not None and ";" in user:  # smb://DOMAIN;user@host, the SMB URI convention
        domain, _, user = user.partition(";")
    if user == "":
        user = None
    password = url.password
    if password is None:
        password = url.secret("password", env=PASSWORD_ENV, what="SMB password file")
    io_timeout = url.option("io_timeout")

    return SmbLocation(
        host=host,
        port=url.port or DEFAULT_PORT,
        share=segments[0],
        root=tuple(segments[1:]),
        user=user,
        password=password,
        domain=domain or None,
        encrypt=url.flag("encrypt"),
        timeout=url.number("timeout", DEFAULT_TIMEOUT),
        io_timeout=None if io_timeout is None else url.number("io_timeout", 0.0),
        connections=url.integer("connections", DEFAULT_CONNECTIONS),
    )
