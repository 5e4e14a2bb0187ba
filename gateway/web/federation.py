"""The search side of federation in the web service: the hop header, and whose links to give.

Results from another gateway keep that site's own signed link by default (the browser
downloads from the site). With ``--proxy-peers`` they get this gateway's link instead, and
``gateway.web.proxy`` streams the file from the site.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import falcon

from gateway.remote import VIA_HEADER, RemoteRecording, incoming_via, via_id
from gateway.web.config import WebConfig
from gateway.web.jsonlistener import Link


def via_of(req: falcon.Request, config: WebConfig) -> list[str]:
    """The gateways this search passed through, this one last (``LoopDetected``: 508)."""
    return incoming_via(req.get_header(VIA_HEADER), via_id(config.settings.site))


def federated_links(config: WebConfig, links: Sequence[Link]) -> list[Link]:
    """Each link with its site; a remote file's link is the site's own unless proxying."""
    out = []
    for link in links:
        recording = link.recording
        if not isinstance(recording, RemoteRecording):
            out.append(replace(link, site=config.settings.site))
        elif config.settings.proxy_peers:
            expires = min(link.expires, recording.expires)
            out.append(replace(link, expires=expires, site=recording.site))
        else:
            out.append(
                replace(link, url=recording.url, expires=recording.expires, site=recording.site)
            )
    return out
