"""A source's URL, parsed once by the gateway and handed to the store plugin that owns its scheme.

``--path 'smb://rec@nas:445/calls/pbx1?encrypt=1'`` gives a store factory::

    SourceURL(scheme="smb", user="rec", host="nas", port=445, path="/calls/pbx1",
              query={"encrypt": "1"}, store_options={...})

The options a store reads (``url.option("timeout")``, ``url.flag("encrypt")``,
``url.number("timeout", 5.0)``) come from the URL's query string, else from the store options
the user gave for this scheme on the command line or in the configuration file
(``--option smb_timeout=5`` arrives as ``timeout``): the URL wins. Secrets come from the URL's
user-info (where a plugin accepts that), a file named by the option ``NAME_file``, or an
environment variable (``url.secret("password", env="GATEWAY_SMB_PASSWORD")``); never from
the query string. ``redacted`` is the URL as it may be shown: without a password.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from gateway.errors import ConfigError, UsageError
from gateway.secret_files import read_secret_file

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def split_scheme(item: str, default_scheme: str) -> tuple[str, str]:
    """``smb://h/s`` -> ("smb", "//h/s"); a bare folder gets ``default_scheme``."""
    m = _SCHEME.match(item)
    if m:
        return m.group(1).lower(), item[m.end() :]
    return default_scheme, item


_USER = re.compile(r"[^:@/?#]*")
_HOST_PORT = re.compile(r"(?:[A-Za-z0-9._~%-]+|\[[0-9A-Fa-f:.]+\])(?::\d*)?")
_PORT = re.compile(r":\d*(?:[/?#]|$)")
_NESTED_PASSWORD = re.compile(r"(//[^:@/?#]*:)[^@]*@")


def userinfo_end(text: str) -> int:
    """In the text after a URL's ``//``, the index of the ``@`` that ends its user part, or -1.

    A user name holds none of ``: @ / ? #``; a password may hold anything (``/``, ``?``,
    ``#``, ``@`` unencoded): it ends at the first ``@`` followed by a plain ``host[:port]``
    (up to ``/``, ``?``, ``#`` or the end). ``host:445/...`` is a port, not a password.
    """
    user = _USER.match(text)
    end = user.end() if user else 0
    if end == len(text) or text[end] not in ":@":
        return -1
    if text[end] == "@":
        return end
    if _PORT.match(text, end):
        return -1
    at = text.find("@", end)
    while at >= 0:
        if _HOST_PORT.fullmatch(re.split(r"[/?#]", text[at + 1 :], maxsplit=1)[0]):
            return at
        at = text.find("@", at + 1)
    return -1


def redact_url(url: str) -> str:
    """``url`` without the password of its user part, nor of a URL in its query.

    When a password may be there (the user name is followed by ``:`` and an ``@`` comes
    later), everything up to the *last* ``@`` is hidden: a little too much of an odd URL
    rather than a part of a password.
    """
    scheme, sep, rest = url.partition("//")
    if not sep:
        return url
    user = _USER.match(rest)
    end = user.end() if user else 0
    last = rest.rfind("@")
    if end < len(rest) and rest[end] == ":" and last > end:
        return f"{scheme}{sep}{rest[:end]}:***{rest[last:]}"
    return f"{scheme}{sep}" + _NESTED_PASSWORD.sub(r"\1***@", rest)


def without_password(url: str) -> str:
    """``url`` with its user part's password left out (``smb://rec:pw@nas/x`` gives
    ``smb://rec@nas/x``); the user part ends where ``SourceURL.parse`` ends it
    (``userinfo_end``), so an ``@`` later in the path stays."""
    scheme, sep, rest = url.partition("//")
    at = userinfo_end(rest) if sep else -1
    user = _USER.match(rest)
    end = user.end() if user else 0
    if at < 0 or end >= at or rest[end] != ":":
        return url
    return f"{scheme}{sep}{rest[:end]}{rest[at:]}"


def parse_flag(value: str, name: str) -> bool:
    """``1/0``, ``true/false``, ``yes/no``, ``on/off`` (any case); ``ConfigError`` otherwise."""
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ConfigError(f"the option {name} takes 1/0, true/false, yes/no or on/off, not {value!r}")


def options_for(owner: str, options: Mapping[str, str] | None) -> dict[str, str]:
    """The ``--option`` values meant for ``owner`` (a scheme or a layout name), without their
    ``OWNER_`` prefix: ``options_for("smb", {"smb_timeout": "5"})`` is ``{"timeout": "5"}``."""
    prefix = f"{owner}_"
    return {k[len(prefix) :]: v for k, v in (options or {}).items() if k.startswith(prefix)}


def parse_positive(value: str, name: str) -> float:
    """A number greater than 0; ``ConfigError`` otherwise."""
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0 or number == float("inf"):
        raise ConfigError(f"the option {name} takes a positive number, not {value!r}")
    return number


@dataclass(frozen=True)
class SourceURL:
    """One ``--path`` source's URL (its fixed part, before any placeholder). Immutable."""

    scheme: str
    """Lower case, without the colon: ``file``, ``smb``, ``s3``."""
    location: str = field(repr=False)
    """What follows ``scheme:`` up to the query, exactly as written (it may hold a password)."""
    query: Mapping[str, str] = field(default_factory=dict)
    """The URL's own options (``?encrypt=1``), percent-decoded."""
    store_options: Mapping[str, str] = field(default_factory=dict)
    """The options given for this scheme (``--option smb_timeout=5`` as ``timeout``)."""
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)
    """Where ``secret`` looks for environment variables."""
    text: str = field(default="", repr=False)
    """The URL as written (``parse`` keeps it), for ``redacted``."""

    @classmethod
    def parse(
        cls,
        text: str,
        options: Mapping[str, str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> SourceURL:
        """Read ``scheme:location[?query]``; ``options`` are all the ``--option`` values, of
        which those named ``<scheme>_NAME`` become this URL's ``store_options``."""
        m = _SCHEME.match(text)
        if not m:
            raise ConfigError("a source URL starts with its scheme, as in file:/var/recordings")
        scheme = m.group(1).lower()
        rest = text[m.end() :]
        # the query starts after the user part: a password may hold "?" (``userinfo_end``)
        at = 2 + userinfo_end(rest[2:]) if rest.startswith("//") else -1
        question = rest.find("?", max(at, 0) + 1)
        location, query = (rest, "") if question < 0 else (rest[:question], rest[question + 1 :])
        return cls(
            scheme=scheme,
            location=location,
            query=dict(parse_qsl(query, keep_blank_values=True)),
            store_options=options_for(scheme, options),
            environ=os.environ if environ is None else environ,
            text=text,
        )

    # -- the authority and path of ``scheme://[user[:password]@]host[:port]/path`` ----------

    @property
    def has_authority(self) -> bool:
        return self.location.startswith("//")

    @functools.cached_property
    def _parts(self) -> tuple[str | None, str | None, str | None, int | None, str]:
        if not self.has_authority:
            return None, None, None, None, self.location
        after = self.location[2:]
        at = userinfo_end(after)
        userinfo, hostpart = (after[:at], after[at + 1 :]) if at >= 0 else ("", after)
        authority = f"{quote(userinfo, safe=':;%')}@{hostpart}" if at >= 0 else hostpart
        try:
            parts = urlsplit(f"{self.scheme}://{authority}")
            port = parts.port
        except ValueError:
            raise ConfigError(f"cannot read the source URL {self.redacted!r}") from None
        if parts.fragment or "#" in hostpart:
            raise ConfigError(f"the source URL {self.redacted!r} has a '#' in it")
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        return user, password, parts.hostname, port, parts.path

    @property
    def user(self) -> str | None:
        """The user name of the URL (percent-decoded), or ``None``."""
        return self._parts[0]

    @property
    def password(self) -> str | None:
        """The password written in the URL (percent-decoded), or ``None``. Never show it."""
        return self._parts[1]

    @property
    def host(self) -> str | None:
        """Host name, lower case (IPv6 without brackets); ``None`` without ``//``."""
        return self._parts[2]

    @property
    def port(self) -> int | None:
        return self._parts[3]

    @property
    def path(self) -> str:
        """The path as written (not percent-decoded): ``/calls/pbx1``, or a local folder."""
        return self._parts[4]

    @property
    def redacted(self) -> str:
        """The URL as it may be shown to users and written to logs: no password (one that
        holds ``?`` or ``/`` unencoded too, since the user part ends at the last ``@``)."""
        if self.text:
            return redact_url(self.text)
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return redact_url(f"{self.scheme}:{self.location}") + (f"?{query}" if query else "")

    # -- options -------------------------------------------------------------------------

    def option(self, name: str, *aliases: str) -> str | None:
        """The option's value (the URL's query wins over the store options); ``None`` when
        not given or empty. ``aliases`` are other accepted names, tried after ``name``."""
        for source in (self.query, self.store_options):
            for key in (name, *aliases):
                value = source.get(key)
                if value:
                    return value
        return None

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.option(name)
        return default if value is None else parse_flag(value, name)

    def number(self, name: str, default: float) -> float:
        """A positive number option (``ConfigError`` for anything else)."""
        value = self.option(name)
        return default if value is None else parse_positive(value, name)

    def integer(self, name: str, default: int) -> int:
        """A positive whole number option."""
        value = self.option(name)
        if value is None:
            return default
        if not value.strip().isdigit() or int(value) <= 0:
            raise ConfigError(f"the option {name} takes a positive whole number, not {value!r}")
        return int(value)

    def secret(self, name: str, *, env: str | None = None, what: str | None = None) -> str | None:
        """A secret from the file named by the option ``NAME_file``, else from the environment
        variable ``env``; ``None`` when neither is set. Only a final line end is removed from a
        file (a password may start or end with spaces). ``ConfigError`` when the file cannot be
        read or is empty: it names the file, never its text."""
        path = self.option(f"{name}_file")
        if path:
            try:
                return read_secret_file(
                    path, what or f"{self.scheme} {name} file", keep_spaces=True
                )
            except UsageError as exc:  # part of a store's configuration, as factories raise it
                raise ConfigError(str(exc)) from None
        if env is not None:
            return self.environ.get(env) or None
        return None

    def check_options(self, known: Iterable[str]) -> None:
        """``ConfigError`` for an option this store does not know (a typo must not pass
        silently). ``NAME_file`` options of secrets must be listed too."""
        allowed = set(known)
        for prefix, source in (("", self.query), (f"{self.scheme}_", self.store_options)):
            unknown = sorted(set(source) - allowed)
            if unknown:
                raise ConfigError(
                    f"unknown {self.scheme}: option {prefix + unknown[0]!r} "
                    f"(known: {', '.join(prefix + k for k in sorted(allowed)) or 'none'})"
                )
