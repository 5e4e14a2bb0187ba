"""How gateways name themselves to each other (federation), without any HTTP client: the
remote source schemes, site names, the ``X-Gateway-Via`` path that stops loops, and the
peers' time limit. Everything that only needs these names (the search loop, the command line,
the configuration) imports this module, not ``gateway.remote`` and its HTTP client.
"""

from __future__ import annotations

import re
import secrets

from gateway.errors import GatewayError, UsageError

SCHEMES = {"gateway+http": "http", "gateway+https": "https"}
"""``--path`` schemes of a remote gateway, and the HTTP scheme each stands for."""
VIA_HEADER = "X-Gateway-Via"
MAX_HOPS = 4
"""A search that already passed through this many gateways is refused."""
DEFAULT_PEER_TIMEOUT = 5.0
"""Seconds the remote sites get to answer a search, all together."""
_SITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_VIA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:~-]{0,63}$")
INSTANCE_ID = "gw-" + secrets.token_hex(6)
"""This process's name in ``X-Gateway-Via`` when no ``--site-name`` is given."""


class LoopDetected(GatewayError):
    """A search came back to a gateway it already passed through, or went through too many."""

    exit_code = 2
    http_status = 508


def via_id(site: str | None) -> str:
    """This gateway's name in ``X-Gateway-Via``: its site name, else a per-run random id."""
    return site or INSTANCE_ID


def check_site_name(name: str) -> str:
    if not _SITE.match(name):
        raise UsageError(
            f"the site name {name!r} must be 1-64 letters, digits, '.', '_', ':' or '-'"
        )
    return name


def incoming_via(header: str | None, own: str) -> list[str]:
    """The gateways a search passed through, this one appended; ``LoopDetected`` for a loop."""
    ids = [item.strip() for item in (header or "").split(",") if item.strip()]
    if len(ids) > 32 or any(not _VIA_ID.match(item) for item in ids):
        raise UsageError(f"the {VIA_HEADER} header is malformed")
    path = " -> ".join([*ids, own])
    if own in ids:
        raise LoopDetected(
            f"federation loop: this search already passed through this gateway ({path})"
        )
    if len(ids) >= MAX_HOPS:
        raise LoopDetected(f"too many federation hops, at most {MAX_HOPS} ({path})")
    return [*ids, own]
