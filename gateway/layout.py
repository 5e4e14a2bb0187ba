"""The layout contract: how a plugin turns a query into the few folders worth listing.

A layout never lists anything itself: it returns ``Scan`` values (a folder, whether to descend,
which keys count) and the search walks them in the source's store. Layouts are added by plugins
through ``gateway_layouts`` (see ``gateway.hookspecs``); the built-in ones are placeholder
patterns (``gateway.placeholders``).

A layout MAY also keep tenants apart (``TenantFolders``): only such layouts can serve a
multi-tenant gateway (``--tenants``), because a tenant's links must open nothing but the
tenant's own files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

from gateway.query import Query

WILDCARD = "*"
"""A prefix segment that stands for every folder at that level."""


@dataclass(frozen=True)
class Scan:
    """One folder to list, relative to the source's root."""

    prefix: str
    """Folder key; a segment ``*`` stands for every folder at that level."""
    recursive: bool = False
    """List every file below ``prefix``, not just the ones directly in it."""
    keys: re.Pattern[str] | None = None
    """When set, only files whose whole key matches count (used by full scans)."""


@runtime_checkable
class Layout(Protocol):
    """Turns a query into the folders to look in. Must be stateless and thread-safe."""

    def scans(self, query: Query, days: Sequence[date]) -> Sequence[Scan]:
        """Return the folders to list for ``query``.

        ``days`` are the PBX-local days the call may be filed under (its start day and, near
        midnight, the neighbouring one), or empty when the client sent no start time. Raise
        ``UsageError`` when the query lacks something the layout cannot do without.
        """
        ...


@runtime_checkable
class TenantFolders(Protocol):
    """Optional capability of a layout: each tenant's recordings lie below folders of its own."""

    def tenant_keys(self, tenant: str) -> re.Pattern[str] | None:
        """A pattern every key filed under ``tenant`` matches as a whole (any day), and no key
        of another tenant does; ``None`` when this layout does not keep tenants apart."""
        ...


def tenant_keys(layout: Layout, tenant: str) -> re.Pattern[str] | None:
    """``layout``'s keys of ``tenant``; ``None`` when the layout cannot tell tenants apart."""
    if isinstance(layout, TenantFolders):
        return layout.tenant_keys(tenant)
    return None
