"""The options the commands share: where recordings are, which call, how to serve.

Each decorator adds click options; ``configured`` and ``make_query`` turn their values into the
click-free settings of ``gateway.configuration``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from gateway.config_file import config_option
from gateway.configuration import (
    DEFAULT_AUTH_FAILURES,
    DEFAULT_LINK_TTL,
    DEFAULT_STOP_TIMEOUT,
    METRICS_TOKEN_ENV,
    TOKEN_ENV,
    Configured,
    configure,
)
from gateway.errors import UsageError
from gateway.query import Query, parse_timestamp
from gateway.via import DEFAULT_PEER_TIMEOUT

F = TypeVar("F", bound=Callable[..., Any])


def source_options(command: F) -> F:
    """The options that say where recordings are and how they are laid out."""
    decorators = [
        config_option,
        click.option(
            "--path",
            required=True,
            help="Comma-separated sources, tried first to last: FOLDER, file:FOLDER, "
            "smb://HOST/SHARE/PATH, s3://BUCKET/PREFIX; may hold %YY %MM %DD %ME %TE.",
        ),
        click.option(
            "--backend",
            help="Storage for sources given without a scheme (default: local).",
        ),
        click.option(
            "--layout",
            help="How recordings are filed below a source without placeholders: flat "
            "(default), freepbx, fusionpbx, or one a plugin adds (see 'gateway plugins').",
        ),
        click.option(
            "--timezone",
            help="The PBX's IANA time zone, for placeholders and day folders "
            "(default: this machine's).",
        ),
        click.option(
            "--lookback",
            type=click.FloatRange(0, 24),
            default=4.0,
            show_default=True,
            help="Hours: also search the neighbouring day for calls this close to midnight.",
        ),
        click.option(
            "--search-all",
            is_flag=True,
            help="Search every source and return all matches (default: stop at the first "
            "source that finds the call).",
        ),
        click.option(
            "--peer-timeout",
            type=click.FloatRange(0.1, 300),
            default=DEFAULT_PEER_TIMEOUT,
            show_default=True,
            help="Seconds the other gateways in --path (gateway+https://...) get to answer "
            "a search, all together.",
        ),
        click.option(
            "--site-name",
            help="This gateway's site name in federated answers and loop detection "
            "(letters, digits, '.', '_', ':', '-'; see docs/federation.md).",
        ),
        click.option(
            "--callid-pattern",
            metavar="REGEX",
            help="What a call id must look like, as a whole (default: Asterisk's EPOCH.SEQ, "
            "maybe after a system name, or a UUID); see docs/sources-and-layouts.md.",
        ),
        click.option(
            "--option",
            "store_options",
            multiple=True,
            metavar="KEY=VALUE",
            help="A store option, passed to the store plugins (repeatable).",
        ),
        click.option(
            "--smb-password-file",
            type=click.Path(exists=True, dir_okay=False),
            help="File holding the SMB password (instead of GATEWAY_SMB_PASSWORD).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def proxy_peers_option(command: F) -> F:
    """``gateway serve --proxy-peers`` (federation; read by ``configure``)."""
    return click.option(
        "--proxy-peers",
        is_flag=True,
        help="Give this gateway's own links for files found at other sites and stream them "
        "through it (default: hand out the sites' links, the browser downloads from them).",
    )(command)


def call_options(command: F) -> F:
    """The options that describe the call to find."""
    decorators = [
        click.option("--callid", help="The call's unique id (Asterisk uniqueid, FreeSWITCH uuid)."),
        click.option(
            "--timestamp",
            help="Start of the call: epoch seconds or milliseconds, ISO 8601 or "
            "2000-01-01.00:00:00 (a time without a zone is read in --timezone).",
        ),
        click.option("--tenant", help="Tenant of the call, fills %TE."),
        click.option("--queue", help="Queue of the call (passed to layouts that use it)."),
        click.option("--agent", help="Agent of the call (passed to layouts that use it)."),
        click.option("--server", help="PBX server id (passed to layouts that use it)."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def serve_options(command: F) -> F:
    """The options of ``gateway serve``, which ``gateway check`` takes too."""
    decorators = [
        source_options,
        proxy_peers_option,
        click.option(
            "--token",
            help="Shared secret of the search clients (visible in ps: prefer "
            f"--token-file or {TOKEN_ENV}).",
        ),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False),
            help="File holding the shared secret; SIGHUP re-reads it.",
        ),
        click.option(
            "--public-url",
            help="Base URL the clients reach the gateway at, e.g. "
            "https://audiovault.example.com (default: from the request and X-Forwarded-*).",
        ),
        click.option(
            "--trusted-proxy",
            default="127.0.0.1",
            show_default=True,
            help="Address of the reverse proxy whose X-Forwarded-Proto/Host/For headers "
            "are believed ('none': believe no one).",
        ),
        click.option(
            "--bind-to",
            default="localhost:4000",
            show_default=True,
            help="HOST:PORT to listen on (port 0: any free port).",
        ),
        click.option(
            "--link-ttl",
            type=click.IntRange(1, 7 * 24 * 3600),
            default=DEFAULT_LINK_TTL,
            show_default=True,
            help="Seconds a download link stays valid.",
        ),
        click.option(
            "--link-key-file",
            type=click.Path(dir_okay=False),
            help="Link keys, one per line (first signs, all verify), shared by instances "
            "behind one load balancer (default: a random key per run); SIGHUP re-reads it.",
        ),
        click.option(
            "--auth-failures",
            type=click.IntRange(0, 10_000),
            default=DEFAULT_AUTH_FAILURES,
            show_default=True,
            help="Failed authentications a client address may make in a minute before it is "
            "answered 429 for a while (0: never throttle).",
        ),
        click.option(
            "--threads",
            type=click.IntRange(1, 1024),
            default=32,
            show_default=True,
            help="Worker threads: each active search or remote-store download holds one.",
        ),
        click.option(
            "--stop-timeout",
            type=click.IntRange(0, 3600),
            default=DEFAULT_STOP_TIMEOUT,
            show_default=True,
            help="Seconds a stop (SIGTERM, Ctrl-C) may take: /healthz says 503 to the load "
            "balancer, then new connections are refused while requests and downloads in "
            "progress finish (0, or a second signal: stop at once).",
        ),
        click.option(
            "--tenants",
            "tenants_file",
            type=click.Path(dir_okay=False),
            help="JSON array of {tenant, secret, note}: each tenant searches with its own "
            "secret and %TE is its name; the token, if given too, searches any tenant. "
            "SIGHUP re-reads it.",
        ),
        click.option(
            "--s3-redirect",
            is_flag=True,
            help="Answer a link to an S3 file with a 302 to a short-lived presigned S3 URL "
            "(browsers must reach the store), instead of streaming it through the gateway.",
        ),
        click.option(
            "--audit-log",
            help="Write every search and download as a JSON line to this file ('-': standard "
            "output); reopened when log rotation moves it.",
        ),
        click.option(
            "--metrics-token-file",
            type=click.Path(dir_okay=False),
            help=f"File holding the bearer token of GET /metrics (or {METRICS_TOKEN_ENV}); "
            "without one, /metrics is not served. SIGHUP re-reads it.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def make_query(params: dict[str, Any], configured: Configured) -> Query:
    callid = params.get("callid")
    if callid is None:
        raise UsageError("--callid is required")
    start = None
    if params.get("timestamp"):
        start = parse_timestamp(params["timestamp"], configured.settings.timezone)
    return Query(
        callid=callid,
        start=start,
        tenant=params.get("tenant"),
        queue=params.get("queue"),
        agent=params.get("agent"),
        server=params.get("server"),
    )


def with_sources(command: Callable[..., None]) -> Callable[..., None]:
    """Configure sources from the command's options and close them afterwards."""

    @functools.wraps(command)
    def wrapper(**params: Any) -> None:
        configured = configure(params)
        try:
            command(configured, **params)
        finally:
            configured.close()

    return wrapper
