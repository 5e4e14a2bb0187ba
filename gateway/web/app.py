"""The falcon application: routes, resources and the one error handler."""

from __future__ import annotations

import falcon

from gateway.web import errors
from gateway.web.config import WebConfig
from gateway.web.files import FileResource
from gateway.web.metrics import MetricsResource
from gateway.web.search import SearchResource
from gateway.web.status import Health, StatusPage
from gateway.web.xmlrpc import XmlRpcResource


def create_app(config: WebConfig) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the app; every resource gets what it needs from ``config``, nothing global."""
    app = falcon.App(cors_enable=False)
    app.req_options.strip_url_path_trailing_slash = False
    search = SearchResource(config)
    app.add_route("/search", search)
    app.add_route("/search/", search)
    app.add_route("/files/{signed}/{name}", FileResource(config))
    xmlrpc = XmlRpcResource(config)
    app.add_route("/xmlrpc", xmlrpc)
    app.add_route("/RPC2", xmlrpc)
    app.add_route("/", StatusPage(config))
    app.add_route("/healthz", Health(config))
    metrics = MetricsResource(config.metrics, config.metrics_token, config.throttle)
    app.add_route("/metrics", metrics)
    errors.install(app)
    return app
