"""``GET /`` (a small page saying the gateway is up) and ``GET /healthz`` (for probes).

Neither shows a path, a token or a key: only the version, how many sources of which kinds,
and the uptime. A request to ``/`` carrying the administrator's token in an
``Authorization: Bearer`` header (never in the address, which browsers keep in their history)
also sees each source's id and state: reachable or not at its last search, and its last error
and when (``gateway.search.SourceStates``); a wrong credential is a ``401`` counted by the
throttle, like a search's.
"""

from __future__ import annotations

import html
import time
from collections import Counter
from datetime import datetime

import falcon

from gateway import __version__
from gateway.search import SourceState
from gateway.web.config import WebConfig
from gateway.web.credentials import credential_of
from gateway.web.search import authorize

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Recording gateway</title>
<meta name="referrer" content="no-referrer"></head>
<body><h1>Recording gateway is up</h1>
<p>Version {version}. Serving {sources}. Up for {uptime}.</p>
<p>QueueMetrics searches at <code>/search/</code>; see docs/protocol.md.</p>
{admin}</body></html>
"""
_SOURCES = """<h2>Sources</h2>
<table><tr><th>source</th><th>state</th><th>last error</th></tr>
{rows}</table>
"""


def uptime_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return (f"{days}d " if days else "") + f"{hours:02d}:{minutes:02d}:{secs:02d}"


def source_kinds(config: WebConfig) -> str:
    kinds = Counter(source.id.split(":", 1)[0] for source in config.sources)
    parts = [f"{n} {kind}:" for kind, n in sorted(kinds.items())]
    total = len(config.sources)
    return f"{total} source{'s' if total != 1 else ''} ({', '.join(parts)})"


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%SZ")


def state_text(state: SourceState) -> tuple[str, str]:
    """A source's state and last error, in words (``(state, last error)``)."""
    if state.searched is None:
        now = "not searched since the start"
    else:
        how = "reachable" if state.reachable else "FAILING"
        now = f"{how} at the last search, {_when(state.searched)}"
    error = (
        "none" if state.last_error is None else f"{_when(state.last_error_at)}: {state.last_error}"
    )
    return now, error


class StatusPage:
    def __init__(self, config: WebConfig) -> None:
        self._config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        admin = self._is_admin(req)
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Cache-Control", "no-store")
        resp.text = _PAGE.format(
            version=html.escape(__version__),
            sources=html.escape(source_kinds(self._config)),
            uptime=uptime_text(time.monotonic() - self._config.started),
            admin=self._sources() if admin else "",
        )

    def _is_admin(self, req: falcon.Request) -> bool:
        """Whether the request carries the administrator's token; ``False`` when it carries
        no credential; ``Unauthorized`` (through the throttle) for a wrong one."""
        credential = credential_of(req.get_header("Authorization"), {}, names=())
        if credential is None:
            return False
        return authorize(req, self._config, credential, None).admin

    def _sources(self) -> str:
        searcher = self._config.service.searcher
        rows = []
        for source in searcher.sources:
            now, error = state_text(searcher.states.get(source.id))
            cells = (source.id, now, error)
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>\n")
        return _SOURCES.format(rows="".join(rows))


class Health:
    def __init__(self, config: WebConfig) -> None:
        self._config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.set_header("Cache-Control", "no-store")
        resp.media = {
            "status": "OK",
            "version": __version__,
            "uptime": int(time.monotonic() - self._config.started),
        }

    on_head = on_get
