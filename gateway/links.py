"""From found recordings to what a client gets: signed links, with the duration where cheap.

The same for every protocol (JSON, XML-RPC): one link per recording, below the gateway's
public URL, showing a neutral name. A file found at another gateway keeps that site's own link
(the browser downloads from the site), unless this gateway proxies its peers.

A link lives ``--link-ttl`` seconds plus the recording's duration when it is known (``lifetime``,
the duration counted up to ``MAX_LISTENING``): a player fetches ranges as it plays and seeks,
so the link must last for the whole listening of a long call, not only for the opening of the
page, while a short call's link stays short.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from gateway.recordings import Recording
from gateway.signing import LinkSigner


@dataclass(frozen=True)
class Link:
    """A found recording and the signed URL that serves it."""

    recording: Recording
    url: str
    expires: datetime
    duration: float | None = None
    """Seconds of audio, when the file's header tells it cheaply (WAV); else ``None``."""
    site: str | None = None
    """The site that has the file: a peer's name, or this gateway's ``--site-name``."""


def neutral_name(callid: str, recording: Recording, number: int, total: int) -> str:
    """The name a link shows and the browser saves: from the call id, never the stored name
    (PBX file names hold the caller's and the callee's numbers)."""
    ext = recording.name.rsplit(".", 1)[-1]
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", callid).strip("._") or "call"
    return f"call-{stem}" + (f"-{number}" if total > 1 else "") + f".{ext}"


Durations = Callable[[Recording], float | None]
"""Tells a recording's duration (through its source), or ``None``."""

MAX_LISTENING = 4 * 3600
"""The most seconds of a recording's duration added to the life of its link: a header that
claims a longer recording (or a peer that says so) never makes a longer-lived credential."""


def lifetime(ttl: int, duration: float | None) -> int:
    """Seconds a link to a recording of ``duration`` seconds stays valid: ``ttl`` to start
    playing it, plus the time to listen to it whole (at most ``MAX_LISTENING``); ``ttl`` alone
    when the duration is unknown."""
    if duration is None or not math.isfinite(duration) or duration <= 0:
        return ttl
    return ttl + min(math.ceil(duration), MAX_LISTENING)


@dataclass(frozen=True)
class LinkMaker:
    """Signs links for found recordings. Thread-safe."""

    signer: LinkSigner
    ttl: int
    site: str | None = None
    """This gateway's ``--site-name``, shown with its own files."""
    proxy_peers: bool = False
    """Sign this gateway's own links for files at other sites too (and relay them)."""

    def links(
        self,
        base: str,
        callid: str,
        recordings: Sequence[Recording],
        tenant: str | None,
        duration: Durations,
    ) -> list[Link]:
        """One link per recording below ``base`` (bound to ``tenant`` when given), valid for
        ``lifetime(ttl, its duration)``; a peer's file relayed expires with the peer's link at
        the latest."""
        links = []
        for number, recording in enumerate(recordings, 1):
            away = recording.elsewhere
            if away is not None and not self.proxy_peers:
                links.append(Link(recording, away.url, away.expires, recording.duration, away.site))
                continue
            seconds = duration(recording)
            name = neutral_name(callid, recording, number, len(recordings))
            signed, target = self.signer.sign(
                recording.source,
                recording.key,
                lifetime(self.ttl, seconds),
                tenant=tenant,
                name=name,
            )
            url = f"{base}/files/{signed}/{quote(name, safe='')}"
            expires = target.expires_at if away is None else min(target.expires_at, away.expires)
            site = self.site if away is None else away.site
            links.append(Link(recording, url, expires, seconds, site))
        return links
