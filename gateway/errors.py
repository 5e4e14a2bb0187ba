"""The project's own error types.

Stores, layouts and the search translate whatever their SDK raises into one of these, so the
command line and the HTTP service can each map them to one exit status or HTTP status. Messages
are shown to users as they are: they name a source by its safe description, never a secret.
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base class. ``exit_code`` is the CLI exit status, ``http_status`` the HTTP one."""

    exit_code = 2
    http_status = 500


class UsageError(GatewayError):
    """The caller asked for something malformed: a bad call id, timestamp or option."""

    exit_code = 2
    http_status = 400


class ConfigError(GatewayError):
    """The configuration cannot work: unknown scheme or layout, a missing source folder."""

    exit_code = 2
    http_status = 500


class PluginError(ConfigError):
    """Plugins contradict each other, for example two of them claim the same scheme."""


class Forbidden(GatewayError):
    """A key would leave the store's root, or names something the gateway must not serve."""

    exit_code = 2
    http_status = 403


class NotFound(GatewayError):
    """The key or folder does not exist in the store."""

    exit_code = 1
    http_status = 404


class Unavailable(GatewayError):
    """The store cannot be reached or refuses the credentials. Names the source, not secrets."""

    exit_code = 3
    http_status = 503


class SiteUnavailable(Unavailable):
    """Another site (a federated source) could not answer; ``site`` names it, ``reason`` says
    why (both safe to show: never a token)."""

    def __init__(self, site: str, reason: str) -> None:
        super().__init__(f"site {site}: {reason}")
        self.site = site
        self.reason = reason


class Unauthorized(GatewayError):
    """The request carries no token, or a wrong one. Never says which token was expected."""

    exit_code = 2
    http_status = 401


class LinkInvalid(Forbidden):
    """A download link that this gateway did not sign: tampered, foreign or from an earlier run."""


class LinkExpired(GatewayError):
    """A download link that was genuine but whose lifetime is over."""

    exit_code = 2
    http_status = 410


class RequestTooLarge(UsageError):
    """The request body is larger than the gateway accepts."""

    http_status = 413


class TooManyRequests(GatewayError):
    """The client failed to authenticate too often: it must wait ``retry_after`` seconds."""

    exit_code = 2
    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
