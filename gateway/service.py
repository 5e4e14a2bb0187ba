"""The search pipeline every protocol adapter uses: authenticate, search, sign links.

Adapters (``gateway.web.search`` for QueueMetrics' JsonListener, ``gateway.web.xmlrpc`` for its
XML-RPC audio server, the command line) only read their request into a credential and a
``Query`` and write the ``Answer`` in their client's shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.explain import Explanation
from gateway.links import Link, LinkMaker
from gateway.query import Query
from gateway.recordings import Recording
from gateway.search import Searcher, SourceObserver
from gateway.source import SiteError
from gateway.tenants import Access, Authenticator


@dataclass(frozen=True)
class Answer:
    """A search's answer: the query as run (a tenant's is its own), links, failed sites."""

    query: Query
    links: list[Link]
    errors: list[SiteError]


class SearchService:
    """Authenticated searches with signed links. Thread-safe."""

    def __init__(
        self,
        searcher: Searcher,
        links: LinkMaker,
        auth: Authenticator,
        *,
        observe: SourceObserver | None = None,
    ) -> None:
        self.searcher = searcher
        self.links = links
        self.auth = auth
        self._observe = observe

    def authorize(self, credential: str | None, tenant: str | None) -> Access:
        """Who is asking: ``Unauthorized`` unless ``credential`` is the token or ``tenant``'s
        secret."""
        return self.auth.authorize(credential, tenant)

    def search(
        self,
        access: Access,
        query: Query,
        *,
        base: str,
        via: Sequence[str] | None = None,
        explain: Explanation | None = None,
    ) -> Answer:
        """Run ``query`` as ``access`` may (a tenant only ever searches its own folders) and
        sign links below ``base`` for what it finds; ``explain`` is filled in with what the
        search did (``Searcher.find``)."""
        query = access.restrict(query)
        result = self.searcher.find(query, via=via, observe=self._observe, explain=explain)
        tenant = access.link_tenant(query, self.auth.tenants is not None)
        links = self.links.links(base, query.callid, result.recordings, tenant, self._duration)
        return Answer(query, links, result.errors)

    def _duration(self, recording: Recording) -> float | None:
        source = self.searcher.source(recording.source)
        return source.duration(recording) if source is not None else None
