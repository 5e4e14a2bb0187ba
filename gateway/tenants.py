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
search any tenant (or, with a layout that allows it, all of them). A reload
(``gateway.reload``) swaps the whole table at once (``TenantRegistry.replace``), so a request
sees either the old tenants or the new ones.

The file is read by ``secret_files.read_private_text`` (a regular file only, never waited on,
bounded in size, writable by its owner only).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from gateway.errors import ConfigError, Unauthorized, UsageError
from gateway.query import Query, check_segment
from gateway.secret_files import Secret, read_private_text

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
    """The configured tenants; thread-safe, replaced whole by ``replace`` (a reload)."""

    def __init__(self, tenants: Mapping[str, Tenant], path: Path | None = None) -> None:
        self._tenants: Mapping[str, Tenant] = dict(tenants)
        self.path = path

    @classmethod
    def from_file(cls, path: Path) -> TenantRegistry:
        return cls(read_tenants(path), path)

    @property
    def tenants(self) -> Mapping[str, Tenant]:
        """The tenants in use, by name."""
        return self._tenants

    @property
    def names(self) -> list[str]:
        return sorted(self._tenants)

    def __len__(self) -> int:
        return len(self._tenants)

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is a configured tenant now."""
        return name in self._tenants

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

    def replace(self, tenants: Mapping[str, Tenant]) -> str | None:
        """Use ``tenants`` from now on (checked already: ``read_tenants``, ``check_not_tokens``);
        what changed, naming tenants but never a secret (``None`` if nothing did)."""
        old, self._tenants = self._tenants, dict(tenants)  # readers see old or new, never a mix
        added = sorted(set(tenants) - set(old))
        removed = sorted(set(old) - set(tenants))
        rekeyed = sorted(
            name
            for name in set(tenants) & set(old)
            if not hmac.compare_digest(tenants[name].secret.encode(), old[name].secret.encode())
        )
        if not (added or removed or rekeyed):
            return None
        changes = [f"{len(tenants)} tenant(s)"]
        for what, names in (("added", added), ("removed", removed), ("new secret", rekeyed)):
            if names:
                changes.append(f"{what}: {', '.join(names)}")
        return "; ".join(changes)


def check_not_tokens(
    tenants: Mapping[str, Tenant], tokens: Mapping[str, str | None], origin: object
) -> None:
    """Refuse tenants one of whose secrets is one of ``tokens`` (by what they are: the admin
    token would make a tenant admin, the metrics token would let the scraper search as that
    tenant): at start and at every reload."""
    for what, token in tokens.items():
        if token is None:
            continue
        for tenant in tenants.values():
            if hmac.compare_digest(tenant.secret.encode("utf-8"), token.encode("utf-8")):
                raise ConfigError(
                    f"{origin}, tenant {tenant.name!r}: its secret is {what}: "
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

    def __init__(self, token: Secret | None, tenants: TenantRegistry | None) -> None:
        if token is None and tenants is None:
            raise ConfigError("no token and no tenants: nobody could search")
        self._token = token
        self.tenants = tenants

    def authorize(self, credential: str | None, tenant: str | None) -> Access:
        """Raise ``Unauthorized`` unless ``credential`` is the token or ``tenant``'s secret."""
        if credential is None:
            raise Unauthorized("a token is required (token, searchtoken or Authorization: Bearer)")
        if self._token is not None and self._token.matches(credential):
            return Access(tenant=None, admin=True)
        if self.tenants is None:
            raise Unauthorized("wrong token")
        if tenant is None:
            raise Unauthorized("name the tenant (tenant=...) whose secret this is")
        return Access(tenant=self.tenants.authenticate(tenant, credential).name, admin=False)
