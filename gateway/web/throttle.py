"""Throttling of failed authentication, per client address and per tenant it names.

Every check of a credential (the search token or a tenant's secret on ``/search/`` and
``/xmlrpc``, the metrics token on ``/metrics``) goes through ``AuthThrottle.authenticate``.
A failure (``401``) counts against two keys:

- the client's address together with what it tried: the tenant it named, when that is a
  configured tenant, else the shared credentials (search and metrics token). ``limit``
  failures within ``window`` seconds there, and that pair gets ``429 Too Many Requests`` with
  ``Retry-After``, whatever the credential, until the oldest of them is ``window`` seconds old
  (a moving window: at most ``limit`` guesses a window, whatever the pace);
- the address as a whole, with ``ADDRESS_FACTOR`` times the limit: naming one tenant after
  another buys no more than that.

So a tenant whose secret is wrong in its QueueMetrics (or someone guessing it) locks out that
tenant from that address only: the other tenants of a hosted QueueMetrics, which share its
outgoing address, keep searching. Other addresses are untouched.

- The address is the one the server reports: behind the trusted reverse proxy
  (``--trusted-proxy``) waitress puts its ``X-Forwarded-For`` there, so the real client is
  throttled, not the proxy. An IPv6 client counts by its ``/64`` (one host usually holds a whole
  ``/64``, so it could otherwise change address at every guess). A client whose address is not
  an IP address (``-``) is not counted: it could be anyone.
- Downloads (``/files/...``), the status page and ``/healthz`` take no credential and are never
  throttled: a link is a credential of its own (signed with HMAC-SHA-256, so it cannot be
  guessed) and a supervisor who shares an address with a guesser (an office's NAT) keeps
  playing the links QueueMetrics gave them.
- Memory is bounded: at most ``max_clients`` keys per counter are remembered (a cachetools
  ``TTLCache``: a key is forgotten ``window`` seconds after its last failure, and when a spray
  of addresses fills the table, the least recently seen ones go first).
- Throttling per address does not stop guessing spread over many addresses: long random
  tokens and secrets do (a warning at start names the short ones).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections.abc import Callable, Container
from typing import TypeVar

import falcon
from cachetools import TTLCache

from gateway.configuration import DEFAULT_AUTH_FAILURES
from gateway.errors import TooManyRequests, Unauthorized
from gateway.web.accesslog import client_address
from gateway.web.metrics import Metrics, route_of

WINDOW = 60.0
"""Seconds."""
MAX_CLIENTS = 20_000
"""Keys remembered at most, per counter: about 14 MB when full of keys at the limit
(measured)."""
ADDRESS_FACTOR = 10
"""An address may fail this many times the limit in all (over all tenants it names)."""
SHARED = " shared"
"""The scope of the credentials that are not a tenant's: the search token, the metrics token."""
T = TypeVar("T")
log = logging.getLogger("gateway")


def client_key(address: str) -> str:
    """What failures are counted by: an IPv4 address, an IPv6 address's ``/64`` (an IPv4
    address mapped into IPv6 counts as that IPv4 address); anything else as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class FailureCounter:
    """Failures per key within a moving window. Thread-safe; memory bounded by
    ``max_clients``."""

    def __init__(
        self,
        limit: int = DEFAULT_AUTH_FAILURES,
        window: float = WINDOW,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit and window must be positive")
        self.limit = limit
        self.window = window
        self._clock = clock
        # key -> monotonic times of its last ``limit`` failures, oldest first
        self._failures: TTLCache[str, tuple[float, ...]] = TTLCache(
            maxsize=max_clients, ttl=window, timer=clock
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._failures.expire()
            return len(self._failures)

    def retry_after(self, key: str) -> int | None:
        """Whole seconds ``key`` must wait before it may try again; ``None``: it may now."""
        with self._lock:
            times = self._failures.get(key, ())
        if len(times) < self.limit:
            return None
        wait = times[0] + self.window - self._clock()
        return math.ceil(wait) if wait > 0 else None

    def failed(self, key: str) -> bool:
        """Count a failure of ``key``; True when this one reaches the limit."""
        now = self._clock()
        with self._lock:
            recent = [t for t in self._failures.get(key, ()) if t > now - self.window]
            recent.append(now)
            self._failures[key] = tuple(recent[-self.limit :])  # kept ``window`` from now
        return len(recent) == self.limit


class AuthThrottle:
    """Guards every check of a credential (search, XML-RPC, metrics): refuses a caller that
    failed too often, and counts its failures. Thread-safe."""

    def __init__(
        self,
        limit: int,
        metrics: Metrics,
        *,
        tenants: Container[str] = (),
        window: float = WINDOW,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._tenants = tenants
        self._scoped: FailureCounter | None = None
        self._address: FailureCounter | None = None
        if limit > 0:
            self._scoped = FailureCounter(limit, window, max_clients=max_clients, clock=clock)
            self._address = FailureCounter(
                limit * ADDRESS_FACTOR, window, max_clients=max_clients, clock=clock
            )

    def authenticate(self, req: falcon.Request, tenant: str | None, check: Callable[[], T]) -> T:
        """``check()`` (which raises ``Unauthorized`` for a wrong credential), unless the
        request's client is throttled for ``tenant`` (the tenant it names, if any): then
        ``TooManyRequests``, whatever the credential."""
        address = client_key(client_address(req.env))
        keys = self._keys(address, tenant)
        waits = [wait for counter, key in keys if (wait := counter.retry_after(key)) is not None]
        if waits:
            raise TooManyRequests(
                "too many failed authentications from this address: try again later",
                max(waits),
            )
        try:
            return check()
        except Unauthorized:
            self._metrics.auth_failures.labels(route_of(req.path)).inc()
            if any([counter.failed(key) for counter, key in keys]):  # count every one
                self._metrics.auth_blocked.inc()
                log.warning(
                    "client %s throttled: too many failed authentications (%s)",
                    address,
                    keys[0][1].removeprefix(address).strip(),
                )
            raise

    def _keys(self, address: str, tenant: str | None) -> list[tuple[FailureCounter, str]]:
        """What a request's failures count against: the (address, tenant named) pair or, with
        no configured tenant named, the (address, shared credential) pair; and the address as
        a whole. None for an address that is not an IP address (it could be anyone's)."""
        if self._scoped is None or self._address is None or address == "-":
            return []
        scope = f" tenant {tenant}" if tenant and tenant in self._tenants else SHARED
        return [(self._scoped, address + scope), (self._address, address)]
