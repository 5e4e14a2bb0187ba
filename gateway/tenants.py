"""Tenants of a multi-tenant PBX (``--tenants FILE``): who may search, and for which ``%TE``.

The file is Uniloader's: a JSON array of ``{"tenant": NAME, "secret": SECRET, "note": TEXT}``.
It is checked strictly, and the whole file is refused for one bad entry, with a message that
names the entry and the tenant but never a secret:

- ``tenant`` must be a plain folder name (no ``/``, ``\\``, ``*``, ``?``, ``%``, not ``.`` or
  ``..``, no control characters), unique even ignoring case (an SMB share does not tell
  ``Acme`` from ``acme``);
- ``secret`` at least ``MIN_SECRET_LENGTH`` characters, and no two tenants share one;
- ``note`` is optional free text; any other key is refused (a typo must not pass silently).

A search authenticates with its tenant's name and secret; ``%TE`` is then that name, whatever
else the request says. The shared ``--token``, when also given, is an admin token that may
search any tenant (or, with a layout that allows it, all of them). ``TenantRegistry.reload``
swaps the whole table at once, so a request sees either the old tenants or the new ones.

The file is read by ``secret_files.read_private_text`` (a regular file only, never waited on,
bounded in size, writable by its owner only). Reloads never wait for each other: each reads the
file on its own, and the table is only swapped if no later reload was applied first, so a
reload that hangs or finishes late never blocks or undoes a newer one.
"""

from __future__ import annotations

import hmac
import itertools
import json
import logging
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from gateway.errors import ConfigError, Unauthorized, UsageError
from gateway.query import Query, check_segment
from gateway.secret_files import read_private_text

log = logging.getLogger("gateway.tenants")

MIN_SECRET_LENGTH = 8
_KEYS = {"tenant", "secret", "note"}
# Compared against when the tenant is unknown, so an unknown name costs the same time as a
# known one with a wrong secret.
_NOBODY = b"\0" * 32


@dataclass(frozen=True)
class Tenant:
    name: str
    secret: str = field(repr=False)
    note: str = ""


def parse_tenants(text: str, origin: str) -> dict[str, Tenant]:
    """The tenants of a tenants file's text, by name; ``ConfigError`` naming what is wrong."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        # json's message says where it stopped and quotes nothing of the file
        raise ConfigError(f"{origin} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ConfigError(f"{origin} must hold a JSON array of tenants")
    tenants: dict[str, Tenant] = {}
    folded: dict[str, str] = {}
    secrets: dict[str, str] = {}
    for number, item in enumerate(data, 1):
        where = f"{origin}, tenant #{number}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: each tenant must be an object")
        unknown = sorted(set(item) - _KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}")
        name = item.get("tenant")
        if not isinstance(name, str) or not name:
            raise ConfigError(f'{where}: "tenant" must be a non-empty string')
        where = f"{origin}, tenant {name!r}"
        try:
            check_segment("tenant", name)
        except UsageError:
            raise ConfigError(
                f"{where}: a tenant name must be a plain folder name "
                "(no '/', '\\', '*', '?', '%', control characters, not '.' or '..')"
            ) from None
        if name.casefold() in folded:
            raise ConfigError(f"{where}: the tenant {folded[name.casefold()]!r} is listed already")
        secret = item.get("secret")
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigError(f'{where}: "secret" must be a non-empty string')
        if secret != secret.strip():
            raise ConfigError(f"{where}: the secret starts or ends with white space")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{where}: the secret must be at least {MIN_SECRET_LENGTH} characters"
            )
        if secret in secrets:
            raise ConfigError(f"{where}: the secret is the same as tenant {secrets[secret]!r}'s")
        note = item.get("note", "")
        if not isinstance(note, str):
            raise ConfigError(f'{where}: "note" must be a string')
        tenants[name] = Tenant(name, secret, note)
        folded[name.casefold()] = name
        secrets[secret] = name
    return tenants


def read_tenants(path: Path) -> dict[str, Tenant]:
    """The tenants of the file at ``path``; ``ConfigError`` when it cannot be read safely
    (``read_private_text``) or holds a bad entry (``parse_tenants``)."""
    if not path.exists():
        raise ConfigError(f"no tenants file {path}")
    return parse_tenants(read_private_text(path, "tenants file"), str(path))


class TenantRegistry:
    """The configured tenants; thread-safe, re-read from its file by ``reload``."""

    def __init__(self, tenants: Mapping[str, Tenant], path: Path | None = None) -> None:
        self._tenants: Mapping[str, Tenant] = dict(tenants)
        self.path = path
        self._reloads = itertools.count(1)  # numbers reloads in the order they start
        self._applied = 0  # the number of the reload whose tenants are in use
        self._swap_lock = threading.Lock()  # held to compare and swap, never while reading
        self.forbidden_secrets: dict[str, str] = {}
        """Secrets no tenant may have (the admin token, the metrics token), by what they are;
        checked at every load."""

    @classmethod
    def from_file(cls, path: Path) -> TenantRegistry:
        return cls(read_tenants(path), path)

    @property
    def names(self) -> list[str]:
        return sorted(self._tenants)

    def __len__(self) -> int:
        return len(self._tenants)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is a configured tenant now."""
        return name in self._tenants

    def short_secrets(self, length: int) -> list[str]:
        """The names of the tenants whose secret is shorter than ``length``."""
        return sorted(t.name for t in self._tenants.values() if len(t.secret) < length)

    def check_secrets_not(self, secrets: Mapping[str, str | None]) -> None:
        """Refuse tenants one of whose secrets is one of ``secrets`` (by what they are: the
        admin token would make a tenant admin, the metrics token would let the scraper search
        as that tenant), now and at every reload."""
        self.forbidden_secrets = {what: s for what, s in secrets.items() if s is not None}
        _check_not_token(self._tenants, self.forbidden_secrets, self.path)

    def authenticate(self, name: str | None, secret: str | None) -> Tenant:
        """The tenant ``name`` if ``secret`` is its secret; ``Unauthorized`` otherwise.

        Unknown tenants and wrong secrets get the same answer, in about the same time.
        """
        tenant = self._tenants.get(name) if name else None
        expected = tenant.secret.encode("utf-8") if tenant else _NOBODY
        given = (secret or "").encode("utf-8")
        if not hmac.compare_digest(given, expected) or tenant is None or not secret:
            raise Unauthorized("unknown tenant or wrong secret")
        return tenant

    def reload(self) -> bool:
        """Re-read the file; on any error keep the current tenants and log why. True if the
        new tenants are in use.

        Safe to call from several threads at once: the file is read without any lock held,
        and a reload's tenants are not applied when a reload started after it was applied
        first (the newest file read wins; a slow older read never overwrites it).
        """
        if self.path is None:
            return False
        number = next(self._reloads)
        try:
            tenants = read_tenants(self.path)
            _check_not_token(tenants, self.forbidden_secrets, self.path)
        except ConfigError as exc:
            log.error(
                "error: tenants not reloaded, keeping the %d current ones: %s",
                len(self._tenants),
                exc,
            )
            return False
        with self._swap_lock:
            if number < self._applied:
                log.warning("tenants: a late reload was not applied, a newer one was")
                return False
            self._applied = number
            before = set(self._tenants)
            self._tenants = tenants  # one assignment: readers see old or new, never a mix
        added, removed = sorted(set(tenants) - before), sorted(before - set(tenants))
        log.info(
            "tenants reloaded from %s: %d tenant(s)%s%s",
            self.path,
            len(tenants),
            f", added {', '.join(added)}" if added else "",
            f", removed {', '.join(removed)}" if removed else "",
        )
        return True


def _check_not_token(
    tenants: Mapping[str, Tenant], forbidden: Mapping[str, str], path: Path | None
) -> None:
    for what, token in forbidden.items():
        for tenant in tenants.values():
            if hmac.compare_digest(tenant.secret.encode("utf-8"), token.encode("utf-8")):
                raise ConfigError(
                    f"{path or 'tenants'}, tenant {tenant.name!r}: its secret is {what}: "
                    "give the tenant its own secret"
                )


@dataclass(frozen=True)
class Access:
    """Who a request turned out to be."""

    tenant: str | None
    """The tenant whose secret was given; ``None`` for the shared token."""
    admin: bool

    def restrict(self, query: Query) -> Query:
        """The query as this caller may run it: a tenant's ``%TE`` is always its own name."""
        if self.admin:
            return query
        return replace(query, tenant=self.tenant)

    def link_tenant(self, query: Query, tenants_configured: bool) -> str | None:
        """The tenant to bind into the links of this search's answer."""
        if not tenants_configured:
            return None
        return self.tenant if not self.admin else query.tenant


class Authenticator:
    """Checks a request's credentials: the shared token, or a tenant's name and secret."""

    def __init__(self, token: str | None, tenants: TenantRegistry | None) -> None:
        if token is None and tenants is None:
            raise ConfigError("no token and no tenants: nobody could search")
        self._token = token.encode("utf-8") if token is not None else None
        self.tenants = tenants

    def authorize(self, credential: str | None, tenant: str | None) -> Access:
        """Raise ``Unauthorized`` unless ``credential`` is the token or ``tenant``'s secret."""
        if credential is None:
            raise Unauthorized("a token is required (token, searchtoken or Authorization: Bearer)")
        if self._token is not None and hmac.compare_digest(credential.encode("utf-8"), self._token):
            return Access(tenant=None, admin=True)
        if self.tenants is None:
            raise Unauthorized("wrong token")
        if tenant is None:
            raise Unauthorized("name the tenant (tenant=...) whose secret this is")
        return Access(tenant=self.tenants.authenticate(tenant, credential).name, admin=False)


def install_reload(registry: TenantRegistry) -> None:
    """Re-read the tenants file on ``SIGHUP`` (on a thread of its own, so the server's loop
    never waits for the file) and say on stderr what happened."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("gateway: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False

    def on_hangup(signum: int, frame: object) -> None:
        threading.Thread(target=registry.reload, name="tenants-reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hangup)
    log.info("%d tenant(s) from %s; SIGHUP re-reads it", len(registry), registry.path)
