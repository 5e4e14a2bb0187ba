"""What the web service needs, gathered once at start-up."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.configuration import DEFAULT_AUTH_FAILURES, DEFAULT_LINK_TTL
from gateway.links import LinkMaker
from gateway.search import Searcher, SearchSettings
from gateway.secret_files import Secret
from gateway.service import SearchService
from gateway.signing import LinkSigner
from gateway.source import Source
from gateway.tenants import Authenticator, TenantRegistry
from gateway.web.metrics import Metrics
from gateway.web.throttle import AuthThrottle

MAX_BODY = 64 * 1024
"""Largest search request body accepted (413 beyond)."""

__all__ = ["DEFAULT_LINK_TTL", "MAX_BODY", "WebConfig"]


@dataclass(frozen=True)
class WebConfig:
    sources: Sequence[Source]
    settings: SearchSettings
    token: Secret | None
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
    metrics_token: Secret | None = None
    """Bearer token of ``GET /metrics``; ``None``: the route does not exist."""
    searcher: Searcher | None = None
    """The searcher over ``sources`` (built from them when not given)."""
    auth_failures: int = DEFAULT_AUTH_FAILURES
    """``--auth-failures``: failed authentications a client address may make in a minute
    before it is answered 429 (``gateway.web.throttle``); ``0``: never throttled."""
    service: SearchService = field(init=False)
    """The search pipeline every search endpoint uses."""
    throttle: AuthThrottle = field(init=False)
    """Every check of a credential goes through it (``gateway.web.throttle``)."""

    def __post_init__(self) -> None:
        searcher = self.searcher or Searcher(self.sources, self.settings)
        object.__setattr__(self, "searcher", searcher)
        links = LinkMaker(self.signer, self.link_ttl, self.settings.site, self.settings.proxy_peers)
        service = SearchService(
            searcher, links, Authenticator(self.token, self.tenants), observe=self.metrics.searched
        )
        object.__setattr__(self, "service", service)
        throttle = AuthThrottle(self.auth_failures, self.metrics, tenants=self.tenants or ())
        object.__setattr__(self, "throttle", throttle)
