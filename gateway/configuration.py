"""From the options of a command (command line, environment, configuration file) to checked
sources, search settings and server settings. No click, no web framework: the command line
and the web service both build on it.

Token precedence (one rule, documented in docs/operations.md): ``--token``, then
``--token-file`` given on the command line, then ``GATEWAY_TOKEN``, then the configuration
file's ``token``, then its ``token_file``.

``gateway search`` and ``get`` go through ``configure`` alone: what only ``serve`` and ``check``
need (link signing and its cryptography, tenants, the audit log's handlers) is imported inside
``prepare_server`` and ``audit_handler``, so a search does not pay for loading it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError, UsageError
from gateway.plugins import Plugins, load_plugins
from gateway.query import DEFAULT_CALLID_PATTERN, callid_shape, parse_timezone
from gateway.search import Searcher, SearchSettings
from gateway.secret_files import Secret, read_secret_file
from gateway.source import Source
from gateway.sources import open_sources
from gateway.via import DEFAULT_PEER_TIMEOUT, check_site_name

if TYPE_CHECKING:
    from gateway.signing import LinkSigner
    from gateway.tenants import Tenant, TenantRegistry

TOKEN_ENV = "GATEWAY_TOKEN"  # noqa: S105 (the name of the variable, not a secret)
METRICS_TOKEN_ENV = "GATEWAY_METRICS_TOKEN"  # noqa: S105 (a variable's name)
DEFAULT_LINK_TTL = 300
DEFAULT_AUTH_FAILURES = 10
"""Failed authentications a client address may make in a minute before it is throttled."""
DEFAULT_STOP_TIMEOUT = 20
"""Seconds a stopping server waits for open connections (below systemd's TimeoutStopSec)."""
SHORT_TOKEN = 16
"""Tokens and secrets shorter than this get a warning at start (they still work: QueueMetrics'
own examples use 10 characters); failed guesses are throttled (``gateway.web.throttle``)."""
_BIND = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")


@dataclass(frozen=True)
class Configured:
    """The plugins, sources and search settings that the source options describe."""

    plugins: Plugins
    searcher: Searcher

    @property
    def sources(self) -> list[Source]:
        return self.searcher.sources

    @property
    def settings(self) -> SearchSettings:
        return self.searcher.settings

    def close(self) -> None:
        self.searcher.close()


def store_options(items: Sequence[str], smb_password_file: str | None = None) -> dict[str, str]:
    """``--option KEY=VALUE`` values (and the named shortcuts) as a dictionary."""
    options: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--option takes KEY=VALUE, not {item!r}")
        options[key.strip()] = value
    if smb_password_file:
        options["smb_password_file"] = smb_password_file
    return options


def configure(params: Mapping[str, Any]) -> Configured:
    """Build plugins, sources and settings from the values of the source options (``path``,
    ``backend``, ``layout``, ``timezone``, ``lookback``, ``search_all``, ``peer_timeout``,
    ``site_name``, ``callid_pattern``, ``store_options``, ``smb_password_file``,
    ``proxy_peers``)."""
    options = store_options(params.get("store_options") or (), params.get("smb_password_file"))
    peer_timeout = params.get("peer_timeout", DEFAULT_PEER_TIMEOUT)
    site = params.get("site_name")
    settings = SearchSettings(
        timezone=parse_timezone(params.get("timezone")),
        lookback=timedelta(hours=params.get("lookback", 4.0)),
        search_all=bool(params.get("search_all")),
        peer_timeout=peer_timeout,
        site=check_site_name(site) if site else None,
        proxy_peers=bool(params.get("proxy_peers")),
        callid_shape=callid_shape(params.get("callid_pattern") or DEFAULT_CALLID_PATTERN),
    )
    plugins = load_plugins()
    sources = open_sources(
        params["path"],
        plugins,
        backend=params.get("backend"),
        layout=params.get("layout"),
        options=options,
        peer_timeout=peer_timeout,
    )
    return Configured(plugins, Searcher(sources, settings))


def parse_bind(value: str) -> tuple[str, int]:
    m = _BIND.match(value.strip())
    if not m or int(m.group("port")) > 65535:
        raise UsageError(f"--bind-to takes HOST:PORT (e.g. localhost:4000), not {value!r}")
    return m.group("v6") or m.group("host"), int(m.group("port"))


def resolve_token(
    token: str | None, token_file: str | None, *, given: frozenset[str] = frozenset()
) -> tuple[Secret, str]:
    """The shared token (with its file, when it came from one: a reload re-reads it) and where
    it came from; ``UsageError`` when there is none.

    ``given`` names the options that came from the command line (the others, if set, came
    from the configuration file). See the module docstring for the precedence.
    """
    env = os.environ.get(TOKEN_ENV, "").strip()
    candidates = [
        ("--token", "token", token if "token" in given else None),
        ("--token-file", "token_file", token_file if "token_file" in given else None),
        (TOKEN_ENV, "env", env or None),
        ("the configuration file's token", "token", token),
        ("the configuration file's token_file", "token_file", token_file),
    ]
    for origin, kind, value in candidates:
        if value and kind == "token_file":
            return Secret(read_secret_file(value), Path(value)), f"{origin} {value}"
        if value:
            return Secret(value), origin
    raise UsageError(
        f"no token: give --token, --token-file or the {TOKEN_ENV} environment variable "
        "(the gateway will not serve without one)"
    )


def metrics_token(path: str | None) -> Secret | None:
    """``--metrics-token-file``, else ``GATEWAY_METRICS_TOKEN``; ``None``: no /metrics."""
    what = "metrics token file"
    if path:
        return Secret(read_secret_file(path, what), Path(path), what)
    value = os.environ.get(METRICS_TOKEN_ENV, "").strip()
    return Secret(value) if value else None


def audit_handler(target: str) -> logging.Handler:
    """Where the audit log goes: ``-`` for standard output, else a file, appended to (created
    mode 0600 by umask) and reopened when log rotation moves it; ``ConfigError`` when the file
    cannot be opened."""
    import logging.handlers  # only the server logs an audit trail

    if target == "-":
        return logging.StreamHandler(sys.stdout)
    try:
        return logging.handlers.WatchedFileHandler(Path(target), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot open the audit log {target}: {exc.strerror}") from None


@dataclass
class ServerSettings:
    """Everything ``serve`` runs with, read and checked; ``check`` reports on it."""

    configured: Configured
    token: Secret | None
    """The shared (admin) token; ``None`` only when tenants are configured."""
    token_origin: str
    signer: LinkSigner
    link_ttl: int
    public_url: str | None
    host: str
    port: int
    bind_to: str
    threads: int
    trusted_proxy: str
    tenants: TenantRegistry | None
    audit: logging.Handler | None
    """Where the audit log goes (opened, so a path that cannot be written stops ``check`` too)."""
    metrics_token: Secret | None
    redirect_to_store: bool
    layout: str | None
    auth_failures: int = DEFAULT_AUTH_FAILURES
    """Failed authentications a client address may make in a minute (then 429)."""
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    """Seconds a stop waits for requests and downloads in progress (0: stop at once)."""

    def close(self) -> None:
        self.configured.close()
        if self.audit is not None:
            self.audit.close()


def prepare_server(params: Mapping[str, Any], *, given: frozenset[str]) -> ServerSettings:
    """Read and check every setting of ``serve``; open the sources (the caller closes them).

    ``given`` names the token options that came from the command line.
    """
    from gateway.signing import LinkSigner  # cryptography: only the server signs links
    from gateway.tenants import TenantRegistry

    tenants_file = params.get("tenants_file")
    token, token_file = params.get("token"), params.get("token_file")
    tenants = TenantRegistry.from_file(Path(tenants_file)) if tenants_file else None
    token_given = token or token_file or os.environ.get(TOKEN_ENV, "").strip()
    secret, origin = None, "none (tenants only)"
    if tenants is None or token_given:
        secret, origin = resolve_token(token, token_file, given=given)
    bind_to = params.get("bind_to", "localhost:4000")
    host, port = parse_bind(bind_to)
    public_url = params.get("public_url")
    if public_url and not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", public_url):
        raise UsageError(f"--public-url takes http(s)://HOST[/PATH], not {public_url!r}")
    key_file = params.get("link_key_file")
    signer = LinkSigner.from_file(Path(key_file)) if key_file else LinkSigner.random()
    metrics = metrics_token(params.get("metrics_token_file"))
    check_tokens(
        secret.value if secret else None,
        metrics.value if metrics else None,
        tenants.tenants if tenants is not None else None,
        tenants_file,
    )
    configured = configure(params)
    try:
        if tenants is not None:
            check_tenant_sources(configured.sources)
        audit = audit_handler(params["audit_log"]) if params.get("audit_log") else None
    except BaseException:
        configured.close()
        raise
    return ServerSettings(
        configured=configured,
        token=secret,
        token_origin=origin,
        signer=signer,
        link_ttl=params.get("link_ttl", DEFAULT_LINK_TTL),
        public_url=public_url,
        host=host,
        port=port,
        bind_to=bind_to,
        threads=params.get("threads", 32),
        trusted_proxy=check_trusted_proxy(params.get("trusted_proxy", "127.0.0.1")),
        tenants=tenants,
        audit=audit,
        metrics_token=metrics,
        redirect_to_store=bool(params.get("s3_redirect")),
        layout=params.get("layout"),
        auth_failures=params.get("auth_failures", DEFAULT_AUTH_FAILURES),
        stop_timeout=params.get("stop_timeout", DEFAULT_STOP_TIMEOUT),
    )


def check_trusted_proxy(address: str) -> str:
    """``--trusted-proxy``: one address, never ``*`` (any client could then choose the address
    it is audited and throttled under, with its own X-Forwarded-For)."""
    if address.strip() == "*":
        raise ConfigError(
            "--trusted-proxy '*' would believe any client's X-Forwarded-For: give the reverse "
            "proxy's address (127.0.0.1 for Caddy on the same machine), or 'none'"
        )
    return address


def check_tokens(
    token: str | None,
    metrics: str | None,
    tenants: Mapping[str, Tenant] | None,
    tenants_origin: object = "the tenants file",
) -> None:
    """The rules between the secrets, at start and at every reload: refuse a metrics token
    that is also the search token (a scraper could then search) and a tenant whose secret is
    one of the tokens (``check_not_tokens``); warn about tokens and tenant secrets shorter than
    ``SHORT_TOKEN`` (naming, never quoting, them)."""
    from gateway.tenants import check_not_tokens

    if token is not None and metrics is not None and token == metrics:
        raise ConfigError(
            "the metrics token is the search token: give the metrics scraper a token of its own"
        )
    if tenants is not None:
        check_not_tokens(
            tenants,
            {"the admin token (--token)": token, "the metrics token": metrics},
            tenants_origin,
        )
    log = logging.getLogger("gateway")
    for what, value in (("the search token", token), ("the metrics token", metrics)):
        if value is not None and len(value) < SHORT_TOKEN:
            log.warning(
                "%s is shorter than %d characters: easier to guess (use a long random one, "
                "e.g. head -c 32 /dev/urandom | base64)",
                what,
                SHORT_TOKEN,
            )
    short = sorted(t.name for t in (tenants or {}).values() if len(t.secret) < SHORT_TOKEN)
    if short:
        log.warning(
            "the secret of tenant(s) %s is shorter than %d characters: easier to guess",
            ", ".join(short),
            SHORT_TOKEN,
        )


def check_tenant_sources(sources: Sequence[Source]) -> None:
    """With tenants, every source must keep each tenant's recordings apart (``%TE``)."""
    for source in sources:
        if not source.separates_tenants():
            raise ConfigError(
                f"with --tenants, every source must keep each tenant's recordings below %TE "
                f"(e.g. file:/var/lib/freeswitch/recordings/%TE/archive/%YY/%ME/%DD or "
                f"--layout fusionpbx); {source.id} does not"
            )
