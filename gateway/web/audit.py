"""The audit log: who searched for which call and who listened to which file, as JSON lines.

One line per search and per download (``GET`` or ``HEAD``: probing a link leaves a trace too),
written when the response is finished::

    {"time": "2026-03-09T10:15:02Z", "event": "download", "client": "203.0.113.7",
     "tenant": null, "method": "GET", "source": "file:/var/spool/asterisk/monitor",
     "file": "2026/03/09/q-....wav", "range": "bytes=0-1", "bytes": 2, "status": 206}

A refused search names the tenant the request named (``tenant``), so guessing at one tenant's
secret shows whom it targets. A line whose text cannot be written as UTF-8 (a file name that
is not UTF-8) is written with JSON escapes instead of being lost.

Never a token, a secret or the signed part of a link. The client is the address the web server
reports, which honours the trusted reverse proxy's ``X-Forwarded-For`` (``--trusted-proxy``).
The file is reopened when log rotation moves it away (``logging.handlers.WatchedFileHandler``),
so logrotate needs no signal and no ``copytruncate``.
"""

from __future__ import annotations

import json
import logging

from gateway.configuration import audit_handler
from gateway.web.accesslog import RequestRecord

AUDITED = {"/search": "search", "/search/": "search", "/xmlrpc": "search", "/RPC2": "search"}


def event_of(path: str) -> str | None:
    if path.startswith("/files/"):
        return "download"
    return AUDITED.get(path)


class AuditLog:
    """Writes one JSON line per search and per download."""

    def __init__(self, handler: logging.Handler) -> None:
        self._log = logging.Logger("gateway.audit")  # private: never propagates anywhere else
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._log.addHandler(handler)
        self._log.setLevel(logging.INFO)

    @classmethod
    def to(cls, target: str) -> AuditLog:
        """``-`` for standard output, else a file (see ``configuration.audit_handler``)."""
        return cls(audit_handler(target))

    def started(self, request: RequestRecord) -> None:
        pass

    def finished(self, request: RequestRecord) -> None:
        event = event_of(request.path)
        if event is None:
            return
        line: dict[str, object] = {
            "time": request.when,
            "event": event,
            "client": request.client,
            "tenant": request.details.get("tenant"),
        }
        if event == "search":
            line["callid"] = request.details.get("callid")
            line["results"] = request.details.get("results")
        else:
            line["method"] = request.method
            line["source"] = request.details.get("source")
            line["file"] = request.details.get("key")
            line["range"] = request.details.get("range")
            line["bytes"] = request.sent
        line["status"] = int(request.status) if request.status.isdigit() else None
        text = json.dumps(line, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates (surrogateescape of a non-UTF-8 name)
            text = json.dumps(line)
        self._log.info(text)

    def close(self) -> None:
        for handler in self._log.handlers:
            handler.close()
