"""Uniloader placeholders: folder patterns such as ``%TE/archive/%YY/%ME/%DD``.

- ``%YY`` year, ``%MM`` month (01-12), ``%DD`` day (01-31), ``%ME`` month as ``Jan``..``Dec``,
  filled from the call's start in the PBX's time zone, one folder per day searched;
- ``%TE`` the tenant.

Without a start time, the folders before the first date placeholder are scanned in full and
only keys whose folders fit the pattern count. Source paths with placeholders and the built-in
layouts (``gateway.builtin_layouts``) are all ``PathPattern`` values.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date

from gateway.errors import UsageError
from gateway.layout import WILDCARD, Scan
from gateway.query import Query

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PLACEHOLDER = re.compile(r"%(YY|MM|DD|ME|TE)")
_DATE_FIELDS = ("YY", "MM", "DD", "ME")
_FIELD_REGEX = {
    "YY": r"\d{4}",
    "MM": r"(?:0[1-9]|1[0-2])",
    "DD": r"(?:0[1-9]|[12]\d|3[01])",
    "ME": "(?:" + "|".join(MONTHS) + ")",
    "TE": r"[^/]+",
}


def has_placeholders(text: str) -> bool:
    return _PLACEHOLDER.search(text) is not None


class PathPattern:
    """A folder pattern with placeholders, as in ``%TE/archive/%YY/%ME/%DD``."""

    def __init__(
        self, pattern: str, *, recursive: bool = True, tenant_optional: bool = False
    ) -> None:
        self.pattern = pattern.strip("/")
        self.recursive = recursive
        self.tenant_optional = tenant_optional
        self._dated = any(f"%{f}" in self.pattern for f in _DATE_FIELDS)

    def scans(self, query: Query, days: Sequence[date]) -> Sequence[Scan]:
        tenant = query.tenant
        if tenant is None and "%TE" in self.pattern:
            if not self.tenant_optional:
                raise UsageError("this source's path uses %TE: the search must name a tenant")
            tenant = WILDCARD
        if days and self._dated:
            prefixes = dict.fromkeys(self._fill(day, tenant) for day in days)
            return [Scan(p, recursive=self.recursive) for p in prefixes]
        if not self._dated:
            return [Scan(self._fill(None, tenant), recursive=self.recursive)]
        return [self._full_scan(tenant)]

    def tenant_keys(self, tenant: str) -> re.Pattern[str] | None:
        """What every key this pattern files under ``tenant`` matches (whole key, any day);
        ``None`` when the pattern has no ``%TE`` (tenants are not kept apart)."""
        if "%TE" not in self.pattern:
            return None
        keys = self._full_scan(tenant).keys
        assert keys is not None
        return keys

    def _fill(self, day: date | None, tenant: str | None) -> str:
        def value(m: re.Match[str]) -> str:
            field = m.group(1)
            if field == "TE":
                return tenant or ""
            assert day is not None
            return {
                "YY": f"{day.year:04d}",
                "MM": f"{day.month:02d}",
                "DD": f"{day.day:02d}",
                "ME": MONTHS[day.month - 1],
            }[field]

        return _PLACEHOLDER.sub(value, self.pattern)

    def _full_scan(self, tenant: str | None) -> Scan:
        segments = self.pattern.split("/")
        fixed: list[str] = []
        for segment in segments:
            if _PLACEHOLDER.search(segment.replace("%TE", "")) or (
                "%TE" in segment and tenant == WILDCARD
            ):
                break
            fixed.append(segment.replace("%TE", tenant or ""))

        def segment_regex(segment: str) -> str:
            parts = _PLACEHOLDER.split(segment)
            # re.split with one group alternates literal text and field names
            out = []
            for i, part in enumerate(parts):
                if i % 2 == 0:
                    out.append(re.escape(part))
                elif part == "TE" and tenant not in (None, WILDCARD):
                    out.append(re.escape(tenant or ""))
                else:
                    out.append(_FIELD_REGEX[part])
            return "".join(out)

        tail = r"/.+" if self.recursive else r"/[^/]+"
        regex = "/".join(segment_regex(s) for s in segments) + tail
        return Scan("/".join(fixed), recursive=True, keys=re.compile(regex))
