"""SMB store: recordings on a Windows or Samba share, read with smbprotocol (no mount).

Source form: ``smb://[[DOMAIN;]USER[:PASSWORD]@]HOST[:PORT]/SHARE[/PATH][?encrypt=1&timeout=5]``
(placeholders and layouts as for ``file:``). The password may also come from the file given
with ``--smb-password-file`` (the store option ``smb_password_file``) or from
``GATEWAY_SMB_PASSWORD``; it never appears in the store's description, its ``repr``, logs or
error messages. See docs/smb.md.

Registered through the ``gateway.plugins`` entry point like any third-party store. smbprotocol
is imported only when an ``smb:`` source is built, so the gateway runs without it. The URL rules
(``gateway_smb.config``) are loaded then too: every command loads this plugin to learn its
scheme, and a search of a local folder should not pay for compiling the SMB name rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.errors import ConfigError
from gateway.hookspecs import StoreType, hookimpl
from gateway.sourceurl import SourceURL

if TYPE_CHECKING:
    from gateway_smb.store import SmbStore

__all__ = ["gateway_store_types", "open_store"]


def open_store(url: SourceURL) -> SmbStore:
    """The ``StoreType`` factory: read the URL and its store options, touch no network."""
    from gateway_smb.config import parse_location

    location = parse_location(url)
    try:
        from gateway_smb.store import SmbStore
    except ImportError as exc:
        if exc.name and exc.name.split(".")[0] in ("smbclient", "smbprotocol", "spnego"):
            raise ConfigError(
                "SMB sources need smbprotocol: pip install 'recording-gateway[smb]'"
            ) from None
        raise
    return SmbStore(location)


@hookimpl
def gateway_store_types() -> Sequence[StoreType]:
    return [
        StoreType(
            scheme="smb",
            factory=open_store,
            description="a Windows or Samba share: smb://USER@HOST[:PORT]/SHARE/PATH "
            "(password from GATEWAY_SMB_PASSWORD or --smb-password-file)",
            aliases=("cifs",),
        )
    ]
