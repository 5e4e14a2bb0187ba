"""``GET``/``POST /search/``: the QueueMetrics JsonListener endpoint."""

from __future__ import annotations

import re

import falcon

from gateway.errors import RequestTooLarge, UsageError
from gateway.search import find_call
from gateway.tenants import Authenticator
from gateway.web import jsonlistener
from gateway.web.accesslog import DETAILS
from gateway.web.config import MAX_BODY, WebConfig
from gateway.web.federation import federated_links, via_of
from gateway.web.links import make_links

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


class SearchResource:
    def __init__(self, config: WebConfig) -> None:
        self._config = config
        self._auth = Authenticator(config.token, config.tenants)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = read_body(req)
        fields = jsonlistener.parse_fields(req.query_string, body, req.content_type)
        access = self._auth.authorize(
            jsonlistener.token_of(fields, req.get_header("Authorization")),
            jsonlistener.first(fields, ("tenant",)),
        )
        query = access.restrict(jsonlistener.to_query(fields, self._config.settings.timezone))
        details = req.env.setdefault(DETAILS, {})
        details.update(callid=query.callid, tenant=query.tenant)
        via = via_of(req, self._config)
        result = find_call(
            self._config.sources,
            query,
            self._config.settings,
            via=via,
            observe=self._config.metrics.searched,
        )
        recordings = result.recordings
        details["results"] = len(recordings)
        base = public_base(req, self._config.public_url)
        tenant = access.link_tenant(query, self._config.tenants is not None)
        links = make_links(self._config, base, query.callid, recordings, tenant)
        links = federated_links(self._config, links)
        resp.media = jsonlistener.answer(query.callid, links, result.errors)
        resp.set_header("Cache-Control", "no-store")

    on_post = on_get


def read_body(req: falcon.Request) -> bytes:
    """The request body, at most ``MAX_BODY`` bytes (``RequestTooLarge`` beyond)."""
    try:
        length = req.content_length
    except falcon.HTTPInvalidHeader:
        raise UsageError("the Content-Length header is not a number") from None
    if length is not None and length > MAX_BODY:
        raise RequestTooLarge(f"the request body is larger than {MAX_BODY} bytes")
    data = req.bounded_stream.read(MAX_BODY + 1)
    if len(data) > MAX_BODY:
        raise RequestTooLarge(f"the request body is larger than {MAX_BODY} bytes")
    return data


def public_base(req: falcon.Request, public_url: str | None) -> str:
    """Where clients reach this gateway: ``--public-url``, else the request's own address.

    Without ``--public-url`` the links use the request's scheme and ``Host``; the server puts
    a trusted reverse proxy's ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` there (waitress's
    ``trusted_proxy``), so a proxy in front gives https links on its own name.
    """
    if public_url:
        return public_url.rstrip("/")
    host = req.netloc
    if not _HOST.match(host):
        raise UsageError("the Host header is not a host name")
    return f"{req.scheme}://{host}{req.root_path}"
