"""``GET``/``POST /search/``: the QueueMetrics JsonListener endpoint (an adapter: it reads the
request, runs ``gateway.service.SearchService`` and writes the answer).

``explain=1`` (the administrator's token only: a tenant's secret gets ``403``, as the
explanation names other tenants' folders and files) adds an ``explain`` member to the answer,
an error answer included: what each source listed, how long it took, and near misses (see
``gateway.explain``).
"""

from __future__ import annotations

import re

import falcon

from gateway.errors import Forbidden, GatewayError, RequestTooLarge, UsageError
from gateway.explain import Explanation
from gateway.service import SearchService
from gateway.sourceurl import FALSE, TRUE
from gateway.tenants import Access
from gateway.web import jsonlistener
from gateway.web.accesslog import DETAILS
from gateway.web.config import MAX_BODY, WebConfig
from gateway.web.credentials import credential_of
from gateway.web.errors import handle_gateway_error
from gateway.web.federation import via_of

_MAX_AUDITED = 100
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


class SearchResource:
    def __init__(self, config: WebConfig) -> None:
        self._service: SearchService = config.service
        self._config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        fields = jsonlistener.parse_fields(req.query_string, read_body(req), req.content_type)
        access = authorize(
            req,
            self._config,
            credential_of(req.get_header("Authorization"), fields),
            jsonlistener.first(fields, ("tenant",)),
        )
        query = access.restrict(jsonlistener.to_query(fields, self._config.settings.timezone))
        details = req.env[DETAILS]
        details.update(callid=query.callid, tenant=query.tenant)
        explanation = None
        if wants_explanation(jsonlistener.first(fields, ("explain",))):
            if not access.admin:
                raise Forbidden("explain=1 needs the administrator's token")
            explanation = Explanation()
        try:
            answer = self._service.search(
                access,
                query,
                base=public_base(req, self._config.public_url),
                via=via_of(req, self._config.settings.site),
                explain=explanation,
            )
        except GatewayError as exc:
            if explanation is None:
                raise
            handle_gateway_error(req, resp, exc, {})  # the error answer, explained
            resp.media = {**resp.media, "explain": explanation.to_json()}
            return
        details["results"] = len(answer.links)
        resp.media = jsonlistener.answer(answer.query.callid, answer.links, answer.errors)
        if explanation is not None:
            resp.media["explain"] = explanation.to_json()
        resp.set_header("Cache-Control", "no-store")

    on_post = on_get


def wants_explanation(value: str | None) -> bool:
    """Whether the ``explain`` field asks for an explanation (``UsageError`` for a value that
    is neither yes nor no)."""
    text = (value or "").strip().lower()
    if text in TRUE:
        return True
    if not text or text in FALSE:
        return False
    raise UsageError("explain must be 1 or 0")


def authorize(
    req: falcon.Request, config: WebConfig, credential: str | None, tenant: str | None
) -> Access:
    """Who a search request is (JSON or XML-RPC): its credential checked against the token or
    ``tenant``'s secret, through the throttle (``gateway.web.throttle``). The tenant named goes
    into the audit details first, so a refused attempt says whom it targeted (cut to
    ``_MAX_AUDITED`` characters: before authentication it is anyone's text)."""
    named = (
        tenant if tenant is None or len(tenant) <= _MAX_AUDITED else tenant[:_MAX_AUDITED] + "..."
    )
    req.env.setdefault(DETAILS, {})["tenant"] = named
    service = config.service
    return config.throttle.authenticate(req, tenant, lambda: service.authorize(credential, tenant))


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
