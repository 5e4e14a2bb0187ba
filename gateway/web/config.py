"""What the web service needs, gathered once at start-up."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.search import SearchSettings
from gateway.signing import LinkSigner
from gateway.sources import Source
from gateway.tenants import TenantRegistry
from gateway.web.metrics import Metrics

DEFAULT_LINK_TTL = 300
MAX_BODY = 64 * 1024
"""Largest search request body accepted (413 beyond)."""


@dataclass(frozen=True)
class WebConfig:
    sources: Sequence[Source]
    settings: SearchSettings
    token: str | None
    """The shared (admin) token; ``None`` only when tenants are configured."""
    signer: LinkSigner
    link_ttl: int = DEFAULT_LINK_TTL
    public_url: str | None = None
    """Base of the links handed out; ``None``: from the request (and X-Forwarded-*)."""
    layout: str | None = None
    started: float = field(default_factory=time.monotonic)
    tenants: TenantRegistry | None = None
    """``--tenants``: each tenant searches with its own secret, ``%TE`` is its name."""
    metrics: Metrics = field(default_factory=Metrics)
    redirect_to_store: bool = False
    """``--s3-redirect``: answer a link with a 302 to the store's own short-lived URL (for
    stores that can make one, ``gateway.storage.Presigner``) instead of streaming the file."""
    metrics_token: str | None = None
    """Bearer token of ``GET /metrics``; ``None``: the route does not exist."""
