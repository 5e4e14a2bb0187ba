"""Signed, expiring, opaque download links.

A link names one file: the source's id, the key in that source, the name to save it under and,
with ``--tenants``, the tenant it was issued to. Those are encrypted (AES-GCM, ``cryptography``)
so that a link, wherever it is seen (a browser's history, a proxy's log, QueueMetrics' pages),
shows neither the storage path nor the caller numbers that recording file names hold. The
ciphertext and the expiry are signed with itsdangerous (HMAC-SHA-256), so nothing in a link can
be changed without breaking its signature, and a forged link is told apart from an expired one.

The secret is random for each run (a restart revokes every earlier link) unless a key file is
given, for several instances behind one load balancer: one key per line, at least
``MIN_KEY_LENGTH`` characters of which at least ``MIN_KEY_DISTINCT`` different ones (a key of
one repeated character, or of a few, is refused), blank lines and ``#`` comments ignored. The
file is read by ``secret_files.read_private_text``: a regular file only its owner may write.
The file's first key signs and encrypts, every key verifies and decrypts, so a key can be
rotated in by putting it first and the old one second. A reload (``gateway.reload``, SIGHUP)
reads the file again and replaces the keys without a restart. The encryption key of each link key is
derived with HKDF.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from itsdangerous import BadSignature, Signer

from gateway.errors import ConfigError, LinkExpired, LinkInvalid
from gateway.secret_files import read_private_text

MIN_KEY_LENGTH = 32
MIN_KEY_DISTINCT = 8
"""Different characters a key of the key file must hold (a random key of 32 hex digits has
about 14; ``k`` repeated 40 times has 1)."""
LEEWAY_SECONDS = 5
"""A link is still accepted this long after its expiry, for clocks of load-balanced instances
that disagree a little."""
_SALT = "gateway.files.v2"
_HKDF_INFO = b"recording-gateway link payload v2"
_NONCE = 12


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
    name: str | None = None
    """The name the browser shows and saves the file under (neutral, from the call id)."""

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


def _cipher(secret: str) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO)
    return AESGCM(hkdf.derive(secret.encode("utf-8")))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class _KeyRing:
    """The keys in use, swapped whole by ``LinkSigner.replace_keys``."""

    keys: tuple[str, ...]
    signer: Signer
    ciphers: tuple[AESGCM, ...]
    """One per key; the first one encrypts."""

    @classmethod
    def of(cls, keys: Sequence[str]) -> _KeyRing:
        if not keys:
            raise ConfigError("no link key given")
        # itsdangerous wants keys oldest to newest and signs with the last one.
        signer = Signer(list(reversed(keys)), salt=_SALT, digest_method=hashlib.sha256)
        return cls(tuple(keys), signer, tuple(_cipher(key) for key in keys))


class LinkSigner:
    """Signs and verifies link tokens. Thread-safe: its keys are one immutable object, replaced
    whole by ``replace_keys`` (a reload), so a link is signed or verified with the old keys or
    the new ones, never a mix."""

    def __init__(
        self,
        keys: Sequence[str],
        *,
        leeway: int = LEEWAY_SECONDS,
        clock: Callable[[], float] = time.time,
        origin: Path | None = None,
    ) -> None:
        self._ring = _KeyRing.of(keys)
        self._leeway = leeway
        self._clock = clock
        self.origin = origin
        """The key file the keys come from; ``None`` for a key made for this run."""

    @classmethod
    def random(cls) -> LinkSigner:
        """A signer whose secret lives only as long as this process."""
        return cls([secrets.token_urlsafe(48)])

    @classmethod
    def from_file(cls, path: Path) -> LinkSigner:
        return cls(read_key_file(path), origin=path)

    def describe(self) -> str:
        """How links are signed, without the keys: for ``gateway check``."""
        if self.origin is None:
            return "signed with a random key made for this run (a restart revokes them)"
        return f"signed with the first of {len(self._ring.keys)} key(s) in {self.origin}"

    def replace_keys(self, keys: Sequence[str]) -> str | None:
        """Sign with ``keys[0]`` and accept links of every key in ``keys`` from now on; what
        changed, without the keys (``None`` if nothing did)."""
        ring, old = _KeyRing.of(keys), self._ring
        self._ring = ring  # one assignment: a request sees the old ring or the new one
        added = len(set(ring.keys) - set(old.keys))
        removed = len(set(old.keys) - set(ring.keys))
        if not added and not removed and ring.keys[0] == old.keys[0]:
            return None
        changes = [f"{len(ring.keys)} key(s)"]
        if ring.keys[0] != old.keys[0]:
            changes.append("a new signing key")
        changes += [f"{n} {what}" for n, what in ((added, "added"), (removed, "removed")) if n]
        return ", ".join(changes)

    def now(self) -> int:
        return int(self._clock())

    def sign(
        self,
        source: str,
        key: str,
        ttl: int,
        *,
        tenant: str | None = None,
        name: str | None = None,
    ) -> tuple[str, LinkTarget]:
        """Return the token for ``key`` in ``source``, valid for ``ttl`` seconds from now
        (and, with ``tenant``, bound to that tenant)."""
        ring = self._ring
        target = LinkTarget(source, key, self.now() + ttl, tenant, name)
        plain = json.dumps([source, key, tenant, name], separators=(",", ":")).encode("utf-8")
        nonce = os.urandom(_NONCE)
        sealed = _b64(nonce + ring.ciphers[0].encrypt(nonce, plain, None))
        token = ring.signer.sign(f"{sealed}.{target.expires}").decode("ascii")
        return token, target

    def verify(self, token: str) -> LinkTarget:
        """Return what ``token`` names; ``LinkInvalid`` if forged, ``LinkExpired`` if too old."""
        ring = self._ring
        try:
            value = ring.signer.unsign(token).decode("ascii")
            sealed, expires_text = value.rsplit(".", 1)
            expires = int(expires_text)
            raw = _unb64(sealed)
        except (BadSignature, ValueError, UnicodeError):
            raise LinkInvalid("this link is not valid (tampered, or from another run)") from None
        target = _open(ring, raw, expires)
        if self.now() > target.expires + self._leeway:
            raise LinkExpired("this link has expired: search again for a fresh one")
        return target


def _open(ring: _KeyRing, raw: bytes, expires: int) -> LinkTarget:
    nonce, sealed = raw[:_NONCE], raw[_NONCE:]
    for cipher in ring.ciphers:
        try:
            payload = json.loads(cipher.decrypt(nonce, sealed, None))
        except (InvalidTag, ValueError):
            continue
        if (
            isinstance(payload, list)
            and len(payload) == 4
            and all(isinstance(v, str) for v in payload[:2])
            and all(v is None or isinstance(v, str) for v in payload[2:])
        ):
            return LinkTarget(payload[0], payload[1], expires, payload[2], payload[3])
    raise LinkInvalid("this link is not valid")


def read_key_file(path: Path) -> list[str]:
    """The keys of a key file, first (signing) key first. ``ConfigError`` for a file that
    cannot be read safely (see ``read_private_text``), holds no key, or a key that is too short
    or trivially weak; errors never quote a key."""
    text = read_private_text(path, "link key file")
    keys: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        key = line.strip()
        if not key or key.startswith("#"):
            continue
        if len(key) < MIN_KEY_LENGTH:
            raise ConfigError(
                f"{path}, line {number}: a link key must be at least {MIN_KEY_LENGTH} characters"
            )
        if len(set(key)) < MIN_KEY_DISTINCT:
            raise ConfigError(
                f"{path}, line {number}: a link key must hold at least {MIN_KEY_DISTINCT} "
                "different characters (make one with: head -c 48 /dev/urandom | base64)"
            )
        keys.append(key)
    if not keys:
        raise ConfigError(f"the link key file {path} holds no key")
    return keys
