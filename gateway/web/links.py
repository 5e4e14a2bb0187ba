"""From found recordings to what a client gets: signed links, with the duration where cheap.

Shared by the JsonListener (``/search/``) and XML-RPC (``/xmlrpc``) endpoints, so both hand out
the same links for the same files.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

from gateway.audioinfo import probe_duration
from gateway.recordings import Recording
from gateway.web.config import WebConfig
from gateway.web.jsonlistener import Link


def make_links(
    config: WebConfig, base: str, recordings: Sequence[Recording], tenant: str | None
) -> list[Link]:
    """One signed link per recording below ``base`` (bound to ``tenant`` when given)."""
    sources = {source.id: source for source in config.sources}
    links = []
    for recording in recordings:
        signed, target = config.signer.sign(
            recording.source, recording.key, config.link_ttl, tenant=tenant
        )
        url = f"{base}/files/{signed}/{quote(recording.name, safe='')}"
        store = getattr(sources.get(recording.source), "store", None)
        duration = probe_duration(store, recording) if store is not None else None
        links.append(Link(recording, url, target.expires_at, duration))
    return links
