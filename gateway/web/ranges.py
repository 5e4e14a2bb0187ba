"""HTTP validators and byte ranges for one file (RFC 9110 sections 8.8, 13 and 14).

Pure functions over what falcon parsed from the request; the resource applies the result.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import falcon

from gateway.storage import Entry


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int
    """Last byte, inclusive."""

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    """The requested range lies outside the file (416)."""


def make_etag(source: str, entry: Entry) -> str:
    """The back-end's own ETag when it has one (S3), else a strong one derived from what
    identifies this version of the file (no content hashing)."""
    if entry.etag:
        return entry.etag
    ident = f"{source}\0{entry.key}\0{entry.size}\0{entry.mtime.timestamp():.6f}"
    # surrogatepass: a source folder named in bytes that are not UTF-8 still gets a tag
    return '"' + hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32] + '"'


def _seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def not_modified(req: falcon.Request, etag: str, mtime: datetime) -> bool:
    """True when the client's cached copy is current (answer 304).

    ``If-None-Match`` (weak comparison) takes precedence; ``If-Modified-Since`` counts only
    without it. A malformed date is ignored, as the RFC asks.
    """
    tags = req.if_none_match
    if tags is not None:
        return any(tag == "*" or f'"{tag}"' == etag for tag in tags)
    try:
        since = req.if_modified_since
    except falcon.HTTPInvalidHeader:
        return False
    return since is not None and _seconds(mtime) <= _seconds(since)


def _if_range_matches(value: str, etag: str, mtime: datetime) -> bool:
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag  # strong comparison: a weak tag never matches
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return False
    return when.tzinfo is not None and _seconds(when) == _seconds(mtime)


def requested_range(req: falcon.Request, size: int, etag: str, mtime: datetime) -> ByteRange | None:
    """The single byte range to send, or ``None`` for the whole file.

    A malformed ``Range``, several ranges, another unit, or an ``If-Range`` that no longer
    matches all mean "send the whole file" (the RFC lets a server ignore ``Range``). Raise
    ``Unsatisfiable`` when the range starts beyond the end of the file.
    """
    try:
        unit = req.range_unit
        parsed = req.range
    except falcon.HTTPInvalidHeader:
        return None
    if parsed is None or unit is None or unit.strip().lower() != "bytes":
        return None
    if req.if_range is not None and not _if_range_matches(req.if_range, etag, mtime):
        return None
    first, last = parsed
    if size == 0:
        raise Unsatisfiable()
    if first < 0:  # suffix: the last -first bytes
        return ByteRange(max(0, size + first), size - 1)
    if first >= size:
        raise Unsatisfiable()
    end = size - 1 if last < 0 or last >= size else last
    return ByteRange(first, end)


def content_disposition(name: str) -> str:
    """``inline`` with an ASCII-safe ``filename`` and the exact name as RFC 6266 ``filename*``."""
    safe = "".join(
        c if (c.isascii() and c.isprintable() and c not in '"\\;%') else "_" for c in name
    )
    safe = safe.strip(" .") or "recording"
    return f"inline; filename=\"{safe}\"; filename*=UTF-8''{quote(name, safe='')}"
