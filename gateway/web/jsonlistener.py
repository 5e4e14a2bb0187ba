"""QueueMetrics' JsonListener, translated: request fields to a ``Query``, recordings to JSON.

Loway has not published the listener's wire format (see docs/protocol.md), so this module is
lenient and is the one place to adjust: fields come from the query string, a form-encoded body
or a JSON object body (the body wins over the query string); each field has a few accepted
names, the first non-empty one wins; unknown fields are ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from gateway.errors import UsageError
from gateway.links import Link
from gateway.query import Query, parse_timestamp
from gateway.source import SiteError

CALLID_FIELDS = ("callid", "uniqueid", "call_id", "callId")
TIMESTAMP_FIELDS = ("timestamp", "ts", "start")
OTHER_FIELDS = ("server", "agent", "queue", "tenant")

Fields = Mapping[str, str]
_SPACED_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")


def parse_fields(query_string: str, body: bytes, content_type: str | None) -> dict[str, str]:
    """Merge the query string and the body into one ``name -> value`` mapping.

    Raise ``UsageError`` (400) for a body that cannot be read: bad UTF-8, malformed JSON, a
    JSON body that is not an object, a field whose value is not a string or number, or an
    escaped lone surrogate (``"\\ud800"``). Percent-encoded bytes that are not UTF-8 (form
    body, query string) become U+FFFD.
    """
    fields = dict(_pairs(query_string))
    if body.strip():
        media = (content_type or "").split(";", 1)[0].strip().lower()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("the request body is not UTF-8") from None
        if media == "application/json" or (not media and text.lstrip().startswith("{")):
            fields.update(_json_fields(text))
        else:
            fields.update(_pairs(text))
    return fields


def _pairs(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if value or name not in out:
            out[name] = value
    return out


def _json_fields(text: str) -> dict[str, str]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: a body nested thousands deep
        raise UsageError("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise UsageError("the JSON body must be an object")
    out: dict[str, str] = {}
    for name, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool):  # "explain": true
            value = int(value)
        if not isinstance(value, str | int | float):
            raise UsageError(f"the field {name!r} must be a string, a number or a boolean")
        if not _is_text(name) or not _is_text(str(value)):
            # json decodes "\ud800" to a lone surrogate, which no UTF-8 text can hold
            raise UsageError("the JSON body holds an escaped lone surrogate: it is not text")
        out[name] = str(value)
    return out


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def first(fields: Fields, names: Sequence[str]) -> str | None:
    """The first non-empty value among the field's accepted names."""
    for name in names:
        value = fields.get(name, "").strip()
        if value:
            return value
    return None


def to_query(fields: Fields, timezone: ZoneInfo) -> Query:
    """Build the search; ``UsageError`` (400) when the call id or timestamp is unusable."""
    callid = first(fields, CALLID_FIELDS)
    if callid is None:
        raise UsageError(f"no call id: send one of {', '.join(CALLID_FIELDS)}")
    timestamp = first(fields, TIMESTAMP_FIELDS)
    start = parse_timestamp(_unspace_offset(timestamp), timezone) if timestamp else None
    return Query(
        callid=callid,
        start=start,
        tenant=first(fields, ("tenant",)),
        queue=first(fields, ("queue",)),
        agent=first(fields, ("agent",)),
        server=first(fields, ("server",)),
    )


def _unspace_offset(timestamp: str) -> str:
    """``2026-03-07T09:15:00 01:00`` -> ``...+01:00``: a ``+`` sent unencoded in a form or a
    query string arrives as a space."""
    return _SPACED_OFFSET.sub(r"\1+\2", timestamp)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def answer(
    callid: str, links: Sequence[Link], errors: Sequence[SiteError] = ()
) -> dict[str, object]:
    """The JSON answer: ``files`` is empty when nothing was found; ``errors`` lists the sites
    (federation) that could not be searched."""
    return {
        "status": "OK",
        "callid": callid,
        "files": [
            {
                "name": link.recording.name,
                "url": link.url,
                "size": link.recording.size,
                "type": link.recording.mime,
                "format": link.recording.format,
                "mtime": iso_utc(link.recording.mtime),
                "expires": iso_utc(link.expires),
                "empty": link.recording.empty,
                "site": link.site,
                "duration": None if link.duration is None else round(link.duration, 2),
            }
            for link in links
        ],
        "errors": [error.to_json() for error in errors],
    }
