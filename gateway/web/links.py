"""From found recordings to what a client gets: signed links, with the duration where cheap.

Shared by the JsonListener (``/search/``) and XML-RPC (``/xmlrpc``) endpoints, so both hand out
the same links for the same files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import quote

from gateway.audioinfo import probe_duration
from gateway.recordings import Recording
from gateway.web.config import WebConfig
from gateway.web.jsonlistener import Link


def neutral_name(callid: str, recording: Recording, number: int, total: int) -> str:
    """The name a link shows and the browser saves: from the call id, never the stored name
    (PBX file names hold the caller's and the callee's numbers)."""
    ext = recording.name.rsplit(".", 1)[-1]
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", callid).strip("._") or "call"
    return f"call-{stem}" + (f"-{number}" if total > 1 else "") + f".{ext}"


def make_links(
    config: WebConfig,
    base: str,
    callid: str,
    recordings: Sequence[Recording],
    tenant: str | None,
) -> list[Link]:
    """One signed link per recording below ``base`` (bound to ``tenant`` when given)."""
    sources = {source.id: source for source in config.sources}
    links = []
    for number, recording in enumerate(recordings, 1):
        name = neutral_name(callid, recording, number, len(recordings))
        signed, target = config.signer.sign(
            recording.source, recording.key, config.link_ttl, tenant=tenant, name=name
        )
        url = f"{base}/files/{signed}/{quote(name, safe='')}"
        store = getattr(sources.get(recording.source), "store", None)
        duration = probe_duration(store, recording) if store is not None else None
        links.append(Link(recording, url, target.expires_at, duration))
    return links
