"""The one place where exceptions become HTTP answers: a JSON body, never a traceback.

``{"status": "ERROR", "error": "<message>"}`` for the project's own errors (with their
``http_status``), for falcon's (unknown route, wrong method, bad header) and, without any
detail, for anything unexpected (500).
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from gateway.errors import GatewayError, TooManyRequests, Unauthorized

log = logging.getLogger("gateway.web")


def error_body(message: str) -> dict[str, str]:
    return {"status": "ERROR", "error": message}


def _reset(resp: falcon.Response) -> None:
    """Forget any half-built success answer (headers, stream) before writing the error."""
    if resp.stream is not None and hasattr(resp.stream, "close"):
        resp.stream.close()
    resp.stream = None
    resp.data = None
    resp.text = None
    for header in (
        "Content-Range",
        "Content-Length",
        "ETag",
        "Last-Modified",
        "Content-Disposition",
        "Cache-Control",
    ):
        resp.delete_header(header)


def handle_gateway_error(
    req: falcon.Request, resp: falcon.Response, ex: GatewayError, params: dict[str, Any]
) -> None:
    _reset(resp)
    resp.status = ex.http_status
    resp.content_type = falcon.MEDIA_JSON
    resp.media = error_body(str(ex))
    resp.set_header("Cache-Control", "no-store")
    if isinstance(ex, Unauthorized):
        resp.set_header("WWW-Authenticate", 'Bearer realm="gateway"')
    if isinstance(ex, TooManyRequests):
        resp.set_header("Retry-After", str(ex.retry_after))


def handle_unexpected(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict[str, Any]
) -> None:
    if isinstance(ex, falcon.HTTPError | falcon.HTTPStatus):
        raise ex  # falcon's own handlers (serialized by serialize_http_error below)
    log.error("internal error: %s", type(ex).__name__, exc_info=ex)
    _reset(resp)
    resp.status = falcon.HTTP_500
    resp.content_type = falcon.MEDIA_JSON
    resp.media = error_body("internal error")
    resp.set_header("Cache-Control", "no-store")


def serialize_http_error(
    req: falcon.Request, resp: falcon.Response, exception: falcon.HTTPError
) -> None:
    """falcon's errors (404 unknown route, 405, 400 bad header) in the project's JSON shape."""
    message = exception.description or exception.title or "error"
    resp.content_type = falcon.MEDIA_JSON
    resp.media = error_body(str(message))


def install(app: falcon.App[falcon.Request, falcon.Response]) -> None:
    app.add_error_handler(Exception, handle_unexpected)
    app.add_error_handler(GatewayError, handle_gateway_error)
    app.set_error_serializer(serialize_http_error)
