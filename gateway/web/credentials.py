"""The one reader of a request's credential, for every endpoint (search, XML-RPC, metrics).

Precedence: an ``Authorization: Bearer <token>`` header, else the first non-empty field among
``token``, ``searchtoken`` and ``secret`` (a form or JSON body field, or the query string,
as the endpoint allows).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

CREDENTIAL_FIELDS = ("token", "searchtoken", "secret")


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or ``None``."""
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def credential_of(
    authorization: str | None,
    fields: Mapping[str, str],
    names: Sequence[str] = CREDENTIAL_FIELDS,
) -> str | None:
    """The request's credential: the bearer token, else the first non-empty field of ``names``."""
    token = bearer(authorization)
    if token is not None:
        return token
    for name in names:
        value = fields.get(name, "").strip()
        if value:
            return value
    return None
