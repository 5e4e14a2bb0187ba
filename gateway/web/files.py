"""``GET``/``HEAD /files/<signed>/<name>``: stream the file a signed link names.

The signed part alone decides which file is served; the last segment is only the name the
browser shows and saves. The link names a source and a key; the source says what that opens
(``Source.file``): a ``StoredFile`` is served here with ranges and validators (local files
through the server's ``wsgi.file_wrapper``, every other store from its chunk stream on the
worker thread), a file at another gateway is redirected to or relayed (``gateway.web.proxy``).
"""

from __future__ import annotations

import logging

import falcon

from gateway.errors import Forbidden, LinkExpired, LinkInvalid, NotFound, Unavailable
from gateway.recordings import audio_format
from gateway.remote import PeerError, PeerFile
from gateway.signing import LinkTarget
from gateway.source import StoredFile
from gateway.web.accesslog import DETAILS, redact
from gateway.web.config import WebConfig
from gateway.web.errors import error_body
from gateway.web.proxy import peer_file
from gateway.web.ranges import (
    ByteRange,
    Unsatisfiable,
    content_disposition,
    make_etag,
    not_modified,
    requested_range,
)
from gateway.web.streams import ChunkStream, FileRange

log = logging.getLogger("gateway")

MAX_PRESIGNED = 7 * 24 * 3600
"""The longest a store's own URL may be signed for (S3's limit, SigV4)."""


class FileResource:
    def __init__(self, config: WebConfig) -> None:
        self._config = config
        self._searcher = config.service.searcher

    def on_get(self, req: falcon.Request, resp: falcon.Response, signed: str, name: str) -> None:
        self._counted(req, resp, signed, body=True)

    def on_head(self, req: falcon.Request, resp: falcon.Response, signed: str, name: str) -> None:
        self._counted(req, resp, signed, body=False)

    def _counted(self, req: falcon.Request, resp: falcon.Response, signed: str, body: bool) -> None:
        """Serve, and answer the link's holder in neutral words: a store's own messages name
        keys and servers (paths, caller numbers), so they go to the server's log only."""
        # whatever a file turns out to hold, the browser never runs it as a page of this site
        resp.set_header("Content-Security-Policy", "sandbox; default-src 'none'")
        try:
            self._serve(req, resp, signed, body)
        except (LinkInvalid, LinkExpired, PeerError):
            raise  # about the link or the peer site (by its configured name): no store detail
        except Unavailable as exc:  # the store is down: count it for /metrics, answer 503
            source = req.env.get(DETAILS, {}).get("source") or "?"
            self._config.metrics.store_failed(source, exc)
            log.warning("download: %s", exc)
            raise Unavailable("the file's storage cannot be reached now: try again") from None
        except NotFound as exc:
            log.info("download: %s", exc)
            raise NotFound("the file of this link is not there any more") from None
        except Forbidden as exc:
            log.warning("download refused: %s", exc)
            raise Forbidden("the file of this link cannot be served") from None

    def _serve(self, req: falcon.Request, resp: falcon.Response, signed: str, body: bool) -> None:
        signer = self._config.signer
        target = signer.verify(signed)
        source = self._searcher.source(target.source)
        federated = source is not None and source.federated
        req.env.setdefault(DETAILS, {}).update(
            source=target.source,
            # a remote file's key is the site's own signed link: never write that down
            key=redact("/" + target.key) if federated else target.key,
            tenant=target.tenant,
            range=(req.get_header("Range") or "")[:100] or None,
        )
        if source is None:
            raise NotFound("the file of this link is not served here any more")
        delivery = source.file(target.key, tenant=target.tenant)
        if isinstance(delivery, PeerFile):
            peer_file(req, resp, self._config, delivery, target, body)
            return
        if not isinstance(delivery, StoredFile):
            raise NotFound(f"{source.label} gives no file that downloads can serve")
        if self._config.redirect_to_store and self._redirect(resp, delivery, target):
            return
        entry = delivery.entry
        fmt = audio_format(entry.name)
        etag = make_etag(source.id, entry)
        max_age = max(0, min(self._config.link_ttl, target.expires - signer.now()))

        resp.set_header("Accept-Ranges", "bytes")
        resp.set_header("Cache-Control", f"private, max-age={max_age}")
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.etag = etag
        resp.last_modified = entry.mtime
        if not_modified(req, etag, entry.mtime):
            resp.status = falcon.HTTP_304
            return
        try:
            wanted = requested_range(req, entry.size, etag, entry.mtime)
        except Unsatisfiable:
            resp.status = falcon.HTTP_416
            resp.set_header("Content-Range", f"bytes */{entry.size}")
            resp.media = error_body(f"the range is outside the file ({entry.size} bytes)")
            return
        resp.content_type = fmt.mime if fmt else "application/octet-stream"
        resp.set_header("Content-Disposition", content_disposition(target.name or entry.name))
        part = wanted or ByteRange(0, entry.size - 1)
        if wanted is not None:
            resp.status = falcon.HTTP_206
            resp.content_range = (part.start, part.end, entry.size)
        resp.content_length = part.length
        if body and part.length > 0:
            self._stream(resp, delivery, part)

    def _redirect(self, resp: falcon.Response, delivery: StoredFile, target: LinkTarget) -> bool:
        """302 to the store's own URL, valid as long as the link and no longer (the store
        serves ranges itself; a player may keep asking the URL it was redirected to for the
        rest of a long call, ``gateway.links.lifetime``). False when the store has no such
        URL."""
        life = max(1, min(MAX_PRESIGNED, target.expires - self._config.signer.now()))
        url = delivery.presigned_url(life)
        if url is None:
            return False
        resp.status = falcon.HTTP_302
        resp.location = url
        resp.set_header("Cache-Control", "no-store")
        resp.set_header("Referrer-Policy", "no-referrer")
        return True

    def _stream(self, resp: falcon.Response, delivery: StoredFile, part: ByteRange) -> None:
        handle = delivery.open_local()
        if handle is None:
            resp.stream = ChunkStream(delivery.open(part.start, part.end + 1), part.length)
        else:
            resp.stream = FileRange(handle, part.start, part.end + 1)
