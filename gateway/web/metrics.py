"""Prometheus metrics (prometheus-client), kept in a registry of the app's own.

- ``gateway_requests_total{route,status}``: finished requests;
- ``gateway_request_seconds{route}``: time to the end of the response;
- ``gateway_bytes_streamed_total``: body bytes of downloads;
- ``gateway_active_streams``: downloads in progress;
- ``gateway_search_seconds{source}``: how long each source took to search;
- ``gateway_store_errors_total{source,error}``: store failures (unreachable, refused...);
- ``gateway_auth_failures_total{route}``: requests refused for a missing or wrong token or
  secret (401);
- ``gateway_auth_blocked_total``: times a client address reached the limit of failed
  authentications and was throttled (``gateway.web.throttle``; its refused requests are
  ``gateway_requests_total{status="429"}``).

``GET /metrics`` serves them only with a metrics token configured (``--metrics-token-file`` or
``GATEWAY_METRICS_TOKEN``), sent as ``Authorization: Bearer``; without one it answers 404.
See docs/operations.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import falcon
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from gateway.errors import NotFound, Unauthorized
from gateway.secret_files import Secret
from gateway.web.accesslog import RequestRecord
from gateway.web.credentials import credential_of

if TYPE_CHECKING:
    from gateway.web.throttle import AuthThrottle


def route_of(path: str) -> str:
    """A bounded label: the route's first segment, or ``other``."""
    head = "/" + path.lstrip("/").split("/", 1)[0]
    if head in ("/search", "/files", "/xmlrpc", "/metrics", "/healthz", "/"):
        return head
    return "/xmlrpc" if head == "/RPC2" else "other"


class Metrics:
    """The gateway's metrics; also a request observer and a search observer."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests", "Finished HTTP requests.", ["route", "status"],
            registry=self.registry,
        )  # fmt: skip
        self.request_seconds = Histogram(
            "gateway_request_seconds", "Time to the end of the response.", ["route"],
            registry=self.registry,
        )  # fmt: skip
        self.bytes_streamed = Counter(
            "gateway_bytes_streamed", "Bytes of downloads sent.", registry=self.registry
        )
        self.active_streams = Gauge(
            "gateway_active_streams", "Downloads in progress.", registry=self.registry
        )
        self.search_seconds = Histogram(
            "gateway_search_seconds", "Time one source took to search.", ["source"],
            registry=self.registry,
        )  # fmt: skip
        self.store_errors = Counter(
            "gateway_store_errors", "Store failures by source and kind.", ["source", "error"],
            registry=self.registry,
        )  # fmt: skip
        self.auth_failures = Counter(
            "gateway_auth_failures", "Requests refused for a missing or wrong credential.",
            ["route"], registry=self.registry,
        )  # fmt: skip
        self.auth_blocked = Counter(
            "gateway_auth_blocked",
            "Times a client address was throttled for failing to authenticate too often.",
            registry=self.registry,
        )

    def started(self, request: RequestRecord) -> None:
        if route_of(request.path) == "/files":
            self.active_streams.inc()

    def finished(self, request: RequestRecord) -> None:
        route = route_of(request.path)
        self.requests.labels(route, request.status).inc()
        self.request_seconds.labels(route).observe(request.seconds)
        if route == "/files":
            self.active_streams.dec()
            self.bytes_streamed.inc(request.sent)

    def searched(self, source: str, seconds: float, error: Exception | None) -> None:
        self.search_seconds.labels(source).observe(seconds)
        if error is not None:
            self.store_failed(source, error)

    def store_failed(self, source: str, error: Exception) -> None:
        self.store_errors.labels(source, type(error).__name__).inc()


class MetricsResource:
    """``GET /metrics``, for a scraper that sends the metrics token as a bearer token."""

    def __init__(self, metrics: Metrics, token: Secret | None, throttle: AuthThrottle) -> None:
        self._metrics = metrics
        self._token = token
        self._throttle = throttle

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._token is None:
            raise NotFound("metrics are off: start the gateway with --metrics-token-file")
        given = credential_of(req.get_header("Authorization"), {}, names=())
        self._throttle.authenticate(req, None, lambda: self._check(given))
        resp.content_type = CONTENT_TYPE_LATEST
        resp.set_header("Cache-Control", "no-store")
        resp.data = generate_latest(self._metrics.registry)

    def _check(self, given: str | None) -> None:
        assert self._token is not None
        if given is None or not self._token.matches(given):
            raise Unauthorized("the metrics need Authorization: Bearer <metrics token>")
