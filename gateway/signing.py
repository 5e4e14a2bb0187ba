"""Signed, expiring download links (itsdangerous).

A link names one file: the source's id, the key in that source, the moment it expires and, with
``--tenants``, the tenant it was issued to, all inside the signed payload, so nothing in a link
can be changed without breaking its signature.
The secret is random for each run (a restart revokes every earlier link) unless a key file is
given, for several instances behind one load balancer: one key per line, at least
``MIN_KEY_LENGTH`` characters, blank lines and ``#`` comments ignored. The file's first key
signs, every key verifies, so a key can be rotated in by putting it first and the old one second.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from itsdangerous import BadSignature, URLSafeSerializer

from gateway.errors import ConfigError, LinkExpired, LinkInvalid

MIN_KEY_LENGTH = 32
LEEWAY_SECONDS = 5
"""A link is still accepted this long after its expiry, for clocks of load-balanced instances
that disagree a little."""
_SALT = "gateway.files.v1"


@dataclass(frozen=True)
class LinkTarget:
    """What a valid link gives access to."""

    source: str
    key: str
    expires: int
    """Epoch seconds."""
    tenant: str | None = None
    """The tenant the link was issued to (``--tenants``): it only opens files below that
    tenant's folders. ``None`` for links of a gateway without tenants, or of the admin token."""

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


class LinkSigner:
    """Signs and verifies link tokens. Thread-safe (it holds only immutable state)."""

    def __init__(
        self,
        keys: Sequence[str],
        *,
        leeway: int = LEEWAY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not keys:
            raise ConfigError("no link key given")
        # itsdangerous wants keys oldest to newest and signs with the last one.
        self._serializer = URLSafeSerializer(list(reversed(keys)), salt=_SALT)
        self._leeway = leeway
        self._clock = clock

    @classmethod
    def random(cls) -> LinkSigner:
        """A signer whose secret lives only as long as this process."""
        return cls([secrets.token_urlsafe(48)])

    @classmethod
    def from_file(cls, path: Path) -> LinkSigner:
        return cls(read_key_file(path))

    def now(self) -> int:
        return int(self._clock())

    def sign(
        self, source: str, key: str, ttl: int, *, tenant: str | None = None
    ) -> tuple[str, LinkTarget]:
        """Return the token for ``key`` in ``source``, valid for ``ttl`` seconds from now
        (and, with ``tenant``, bound to that tenant)."""
        target = LinkTarget(source, key, self.now() + ttl, tenant)
        payload: list[object] = [target.source, target.key, target.expires]
        if tenant is not None:
            payload.append(tenant)
        token = self._serializer.dumps(payload)
        return token, target

    def verify(self, token: str) -> LinkTarget:
        """Return what ``token`` names; ``LinkInvalid`` if forged, ``LinkExpired`` if too old."""
        try:
            payload = self._serializer.loads(token)
        except BadSignature:
            raise LinkInvalid("this link is not valid (tampered, or from another run)") from None
        if (
            not isinstance(payload, list)
            or len(payload) not in (3, 4)
            or not isinstance(payload[0], str)
            or not isinstance(payload[1], str)
            or not isinstance(payload[2], int)
            or (len(payload) == 4 and not isinstance(payload[3], str))
        ):
            raise LinkInvalid("this link is not valid")
        tenant = payload[3] if len(payload) == 4 else None
        target = LinkTarget(payload[0], payload[1], payload[2], tenant)
        if self.now() > target.expires + self._leeway:
            raise LinkExpired("this link has expired: search again for a fresh one")
        return target


def read_key_file(path: Path) -> list[str]:
    """The keys of a key file, first (signing) key first. Errors never quote a key."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"cannot read the link key file {path}: {reason}") from None
    keys: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        key = line.strip()
        if not key or key.startswith("#"):
            continue
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"{path}, line {number}: a link key must be at least {MIN_KEY_LENGTH} characters"
            )
        keys.append(key)
    if not keys:
        raise ConfigError(f"the link key file {path} holds no key")
    return keys
