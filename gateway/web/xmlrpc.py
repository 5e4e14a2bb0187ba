"""``POST /xmlrpc`` (and ``/RPC2``): QueueMetrics' remote audio server protocol over XML-RPC.

QueueMetrics (``default.audioRpcServer=URL``) calls, as Loway's reference server
(``QueueMetricsXmlRpcBrowser``, ``servers/xmlrpc_audio_server.php``) answers them:

- ``QMAudio.findStoredFile(serverId, callId, qmUserId, qmUserName)`` ->
  ``[found, url, length, encoding, duration]``; several files: ``url`` is ``"MULTI:"`` and the
  urls separated by spaces, the other three hold as many space-separated entries (``-`` where
  unknown);
- ``QMAudio.listenOngoingCall`` / ``QMAudio.listenOngoingCallOutbound(serverId, callId, agent,
  qmUserId[, qmUserName])`` -> ``[found, url, popupWidth, popupHeight]``: a recordings gateway
  has no live calls, so always ``[false, "", 0, 0]``.

The protocol has no place for a secret, so the credentials travel in the URL's query string:
``?token=TOKEN`` or ``?tenant=NAME&secret=SECRET`` (``searchtoken`` is also accepted, and an
``Authorization: Bearer`` header, which wins, as on every endpoint: ``gateway.web.credentials``).

The body is parsed by the standard library's unmarshaller fed by defusedxml's expat parser
with DTDs, entities and external references forbidden (so no billion laughs, no external
entity), after a size check (``MAX_BODY``). Answers:

- a bad call (unknown method, wrong number or type of arguments, malformed or forbidden XML, a
  call id the gateway refuses, a store that cannot be reached) is an XML-RPC fault, HTTP 200,
  as the XML-RPC convention wants, with the interoperability fault codes (-32700 parse error,
  -32600 not an XML-RPC call, -32601 unknown method, -32602 bad arguments, -32500 application
  error);
- missing or wrong credentials are HTTP 401, a client throttled after too many of them
  HTTP 429 (``gateway.web.throttle``), an oversized body HTTP 413, a compressed body HTTP 415:
  transport-level refusals (the body is still an XML-RPC fault);
- no start time comes with the call, so the search runs without one: sources with date
  placeholders or a dated layout are scanned in full below their fixed part (slower).
"""

from __future__ import annotations

import logging
import xmlrpc.client
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.parsers.expat import ExpatError

import falcon
from defusedxml import DefusedXmlException
from defusedxml.xmlrpc import DefusedExpatParser

from gateway.audioinfo import minutes_seconds
from gateway.errors import (
    GatewayError,
    RequestTooLarge,
    TooManyRequests,
    Unauthorized,
    Unavailable,
)
from gateway.links import Link
from gateway.query import Query
from gateway.tenants import Access
from gateway.web.accesslog import DETAILS
from gateway.web.config import WebConfig
from gateway.web.credentials import credential_of
from gateway.web.federation import via_of
from gateway.web.search import authorize, public_base, read_body

log = logging.getLogger("gateway.web")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
APPLICATION_ERROR = -32500

_MEDIA = "text/xml; charset=utf-8"


class Refused(Exception):
    """A transport-level refusal: an HTTP status other than 200 (the body is still a fault)."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


class Fault(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_call(body: bytes) -> tuple[str, tuple[Any, ...]]:
    """Method name and parameters of an XML-RPC call; ``Fault`` when it is not one."""
    unmarshaller = xmlrpc.client.Unmarshaller()
    parser = DefusedExpatParser(
        unmarshaller, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(body)
        parser.close()
        params = unmarshaller.close()
    except DefusedXmlException:
        raise Fault(PARSE_ERROR, "forbidden XML: DTDs and entities are not accepted") from None
    except ExpatError as exc:
        raise Fault(PARSE_ERROR, f"malformed XML: {exc}") from None
    except (xmlrpc.client.ResponseError, ValueError, TypeError, IndexError, KeyError):
        raise Fault(INVALID_REQUEST, "not an XML-RPC call") from None
    method = unmarshaller.getmethodname()
    if not method:
        raise Fault(INVALID_REQUEST, "not an XML-RPC call (no methodName)")
    return method, tuple(params)


def _text(value: Any, what: str) -> str:
    """A parameter QueueMetrics sends as a string (a number is taken as its text)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Fault(INVALID_PARAMS, f"{what} must be a string")
    return str(value)


def stored_file_answer(links: Sequence[Link]) -> list[Any]:
    """``[found, url, length, encoding, duration]`` as the reference server builds it."""
    if not links:
        return [False, "", "", "", ""]
    urls = [link.url for link in links]
    lengths = [str(link.recording.size) for link in links]
    encodings = [link.recording.format or "-" for link in links]
    durations = [minutes_seconds(link.duration) for link in links]
    if len(links) == 1:
        return [True, urls[0], lengths[0], encodings[0], durations[0]]
    return [
        True,
        "MULTI:" + " ".join(urls),
        " ".join(lengths),
        " ".join(encodings),
        " ".join(durations),
    ]


def _dumps(value: Any) -> bytes:
    if isinstance(value, Fault):
        text = xmlrpc.client.dumps(
            xmlrpc.client.Fault(value.code, value.message), methodresponse=True
        )
    else:
        text = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=False)
    return text.encode("utf-8")


@dataclass(frozen=True)
class _Call:
    req: falcon.Request
    access: Access
    tenant: str | None
    """The ``tenant`` of the URL's query string."""
    params: tuple[Any, ...]


class XmlRpcResource:
    def __init__(self, config: WebConfig) -> None:
        self._config = config
        self._service = config.service
        self._methods: dict[str, Callable[[_Call], Any]] = {
            "QMAudio.findStoredFile": self._find_stored_file,
            "QMAudio.listenOngoingCall": self._listen_ongoing_call,
            "QMAudio.listenOngoingCallOutbound": self._listen_ongoing_call,
        }

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = _MEDIA
        resp.set_header("Cache-Control", "no-store")
        try:
            result: Any = self._call(req)
        except Fault as fault:
            result = fault
        except Refused as exc:
            resp.status = exc.status
            result = Fault(INVALID_REQUEST, str(exc))
        except Unauthorized as exc:
            resp.status = falcon.HTTP_401
            resp.set_header("WWW-Authenticate", 'Bearer realm="gateway"')
            result = Fault(APPLICATION_ERROR, str(exc))
        except TooManyRequests as exc:
            resp.status = falcon.HTTP_429
            resp.set_header("Retry-After", str(exc.retry_after))
            result = Fault(APPLICATION_ERROR, str(exc))
        except RequestTooLarge as exc:
            resp.status = falcon.HTTP_413
            result = Fault(INVALID_REQUEST, str(exc))
        except Unavailable as exc:
            result = Fault(APPLICATION_ERROR, str(exc))
        except GatewayError as exc:
            code = INVALID_PARAMS if exc.http_status == 400 else APPLICATION_ERROR
            result = Fault(code, str(exc))
        resp.data = _dumps(result)

    def _call(self, req: falcon.Request) -> Any:
        encoding = (req.get_header("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            raise Refused(falcon.HTTP_415, "compressed request bodies are not accepted")
        fields = dict(parse_qsl(req.query_string, keep_blank_values=False))
        credential = credential_of(req.get_header("Authorization"), fields)
        body = read_body(req)
        tenant = fields.get("tenant") or None
        access = authorize(req, self._config, credential, tenant)
        method, params = parse_call(body)
        handler = self._methods.get(method)
        if handler is None:
            raise Fault(METHOD_NOT_FOUND, f"unknown method {method!r}")
        return handler(_Call(req, access, tenant, params))

    def _find_stored_file(self, call: _Call) -> Any:
        params, access = call.params, call.access
        if len(params) != 4:
            raise Fault(
                INVALID_PARAMS,
                "QMAudio.findStoredFile takes 4 arguments "
                f"(serverId, callId, qmUserId, qmUserName), not {len(params)}",
            )
        server, callid = _text(params[0], "serverId"), _text(params[1], "callId")
        _text(params[2], "qmUserId")
        _text(params[3], "qmUserName")
        # A tenant searches as itself (restrict); the admin token may name one in the URL.
        query = access.restrict(
            Query(callid=callid.strip(), tenant=call.tenant, server=server.strip() or None)
        )
        details = call.req.env.setdefault(DETAILS, {})
        details.update(callid=query.callid, tenant=query.tenant)
        answer = self._service.search(
            access,
            query,
            base=public_base(call.req, self._config.public_url),
            via=via_of(call.req, self._config.settings.site),
        )
        details["results"] = len(answer.links)
        return stored_file_answer(answer.links)

    def _listen_ongoing_call(self, call: _Call) -> Any:
        params = call.params
        if len(params) not in (4, 5):
            raise Fault(
                INVALID_PARAMS,
                "QMAudio.listenOngoingCall takes 4 or 5 arguments "
                f"(serverId, callId, agent, qmUserId[, qmUserName]), not {len(params)}",
            )
        for n, value in enumerate(params):
            _text(value, f"argument {n + 1}")
        return [False, "", 0, 0]
