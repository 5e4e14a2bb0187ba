"""Throttling of failed authentication, per client address.

A client address that failed to authenticate (any ``401``: a wrong or missing search token,
tenant secret or metrics token) ``limit`` times within ``window`` seconds gets ``429 Too Many
Requests`` with ``Retry-After`` for every request until the oldest of those failures is
``window`` seconds old (a moving window: at most ``limit`` guesses a window, whatever the pace).
Other addresses are untouched.

- The address is the one the server reports: behind the trusted reverse proxy
  (``--trusted-proxy``) waitress puts its ``X-Forwarded-For`` there, so the real client is
  throttled, not the proxy. An IPv6 client counts by its ``/64`` (one host usually holds a whole
  ``/64``, so it could otherwise change address at every guess).
- Downloads (``/files/...``) are never throttled and never count: a link is a credential of its
  own (signed with HMAC-SHA-256, so it cannot be guessed) and a supervisor who shares an address
  with a guesser (an office's NAT) keeps playing the links QueueMetrics gave them.
- Memory is bounded: at most ``max_clients`` addresses are remembered (a cachetools
  ``TTLCache``: an address is forgotten ``window`` seconds after its last failure, and when a
  spray of addresses fills the table, the least recently seen ones go first).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable

import falcon
from cachetools import TTLCache

from gateway.configuration import DEFAULT_AUTH_FAILURES
from gateway.errors import TooManyRequests
from gateway.web.accesslog import client_address
from gateway.web.metrics import Metrics, route_of

FAILURES = DEFAULT_AUTH_FAILURES
"""Failed authentications an address may make within ``WINDOW``."""
WINDOW = 60.0
"""Seconds."""
MAX_CLIENTS = 20_000
"""Addresses remembered at most: about 14 MB when full of addresses at the limit (measured)."""


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
        limit: int = FAILURES,
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
    """falcon middleware: refuses a throttled address with 429 and counts each 401 answered."""

    def __init__(self, failures: FailureCounter, metrics: Metrics) -> None:
        self._failures = failures
        self._metrics = metrics

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.path.startswith("/files/"):
            return
        wait = self._failures.retry_after(client_key(client_address(req.env)))
        if wait is not None:
            raise TooManyRequests(
                "too many failed authentications from this address: try again later", wait
            )

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, succeeded: bool
    ) -> None:
        if resp.status_code != 401 or req.path.startswith("/files/"):
            return
        self._metrics.auth_failures.labels(route_of(req.path)).inc()
        if self._failures.failed(client_key(client_address(req.env))):
            self._metrics.auth_blocked.inc()
