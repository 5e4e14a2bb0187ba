"""The hop header of federated searches (``X-Gateway-Via``), read from a request."""

from __future__ import annotations

import falcon

from gateway.via import VIA_HEADER, incoming_via, via_id


def via_of(req: falcon.Request, site: str | None) -> list[str]:
    """The gateways this search passed through, this one last (``LoopDetected``: 508)."""
    return incoming_via(req.get_header(VIA_HEADER), via_id(site))
