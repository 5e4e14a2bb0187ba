"""``/files/`` links of this gateway that name a file at another site (federation).

With ``--proxy-peers`` the file is streamed from the site through this gateway, for browsers
that cannot reach the site: the request's ``Range`` and validators (``If-Range``,
``If-None-Match``, ``If-Modified-Since``) are forwarded to the site's own link, the site's
status and content headers come back, and the body is relayed chunk by chunk from a generator
on the worker thread (never buffered, never handed to the file wrapper). Redirects from the
site are not followed. Without ``--proxy-peers`` such a link (signed while it was on, by this
key) answers ``307`` to the site's own link. Caches keep a relayed file no longer than
``--link-ttl`` nor than the link lives (``gateway.links.lifetime``), as for local files.
"""

from __future__ import annotations

import falcon

from gateway.errors import LinkExpired, NotFound
from gateway.recordings import audio_format
from gateway.remote import PeerError, PeerFile, clean_text, stream_body
from gateway.signing import LinkTarget
from gateway.web.config import WebConfig
from gateway.web.errors import error_body
from gateway.web.ranges import content_disposition
from gateway.web.streams import ChunkStream

FORWARDED = ("Range", "If-Range", "If-None-Match", "If-Modified-Since")
PASSED_BACK = ("Content-Range", "Accept-Ranges", "ETag", "Last-Modified")
"""Headers relayed from the site. Content-Type and Content-Disposition are this gateway's own
(from the file's name): a site must not make this gateway serve HTML or scripts."""
READ_TIMEOUT = 30.0
"""Seconds a site may stay silent in the middle of a proxied download."""
_UNKNOWN_LENGTH = 1 << 62


def peer_file(
    req: falcon.Request,
    resp: falcon.Response,
    config: WebConfig,
    file: PeerFile,
    target: LinkTarget,
    body: bool,
) -> None:
    resp.set_header("Referrer-Policy", "no-referrer")
    if not config.settings.proxy_peers:
        resp.status = falcon.HTTP_307
        resp.location = file.url
        resp.set_header("Cache-Control", "no-store")
        return
    source = file.peer
    headers = {name: value for name in FORWARDED if (value := req.get_header(name))}
    method = "GET" if body else "HEAD"
    upstream = source.fetch(file.path, method, headers, max(READ_TIMEOUT, source.timeout))
    status = upstream.status
    if status not in (200, 206, 304, 416):
        data = b"" if not body else upstream.read(4096, decode_content=False)
        upstream.close()
        raise _error(source.site, status, data)
    resp.status = falcon.code_to_http_status(status)
    for name in PASSED_BACK:
        value = upstream.headers.get(name)
        if value is not None:
            resp.set_header(name, value)
    max_age = max(0, min(config.link_ttl, target.expires - config.signer.now()))
    resp.set_header("Cache-Control", f"private, max-age={max_age}")
    resp.set_header("X-Content-Type-Options", "nosniff")
    length_header = upstream.headers.get("Content-Length", "").strip()
    length = int(length_header) if length_header.isdigit() else None
    if status == 416:
        upstream.drain_conn()
        upstream.release_conn()
        resp.media = error_body("the range is outside the file")
        return
    shown = target.name or target.key.rsplit("/", 1)[-1]
    fmt = audio_format(shown)
    resp.content_type = fmt.mime if fmt else "application/octet-stream"
    resp.set_header("Content-Disposition", content_disposition(shown))
    if length is not None and status != 304:
        resp.content_length = length
    if not body or status == 304 or length == 0:
        upstream.drain_conn()
        upstream.release_conn()
        return
    resp.stream = ChunkStream(stream_body(upstream, source.site), length or _UNKNOWN_LENGTH)


def _error(site: str, status: int, data: bytes) -> Exception:
    if status == 404:
        return NotFound(f"site {site}: the file of this link is not there any more")
    if status in (403, 410):
        return LinkExpired(f"site {site}: its link has expired or was revoked: search again")
    if 300 <= status < 400:
        return PeerError(site, f"answered with a redirect (HTTP {status}), which is not followed")
    text = clean_text(data.decode("utf-8", "replace"), 200) if data else ""
    return PeerError(site, f"answered HTTP {status}" + (f" ({text})" if text else ""))
