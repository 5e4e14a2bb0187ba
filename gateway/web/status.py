"""``GET /`` (a small page saying the gateway is up) and ``GET /healthz`` (for probes).

Neither shows a path, a token or a key: only the version, how many sources of which kinds,
and the uptime.
"""

from __future__ import annotations

import html
import time
from collections import Counter

import falcon

from gateway import __version__
from gateway.web.config import WebConfig

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Recording gateway</title>
<meta name="referrer" content="no-referrer"></head>
<body><h1>Recording gateway is up</h1>
<p>Version {version}. Serving {sources}. Up for {uptime}.</p>
<p>QueueMetrics searches at <code>/search/</code>; see docs/protocol.md.</p>
</body></html>
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


class StatusPage:
    def __init__(self, config: WebConfig) -> None:
        self._config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Cache-Control", "no-store")
        resp.text = _PAGE.format(
            version=html.escape(__version__),
            sources=html.escape(source_kinds(self._config)),
            uptime=uptime_text(time.monotonic() - self._config.started),
        )


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
