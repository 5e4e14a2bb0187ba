"""``gateway serve``: the HTTP service under waitress.

The token comes from ``--token``, else ``--token-file``, else ``GATEWAY_TOKEN`` (a file or the
variable keeps it out of ``ps``). At start-up every source is checked: a missing folder or
bucket is a configuration error (exit 2); an unreachable store only warns, since a NAS that is
down now may be back before the first search (which then answers 503 until it is).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click
from click.core import ParameterSource

from gateway.cli import Configured, F, configure, proxy_peers_option, source_options
from gateway.errors import ConfigError, Unavailable, UsageError
from gateway.secret_files import read_secret_file
from gateway.signing import LinkSigner
from gateway.tenants import TenantRegistry, check_tenant_sources, install_reload
from gateway.web.accesslog import RequestObserver
from gateway.web.audit import AuditLog
from gateway.web.config import DEFAULT_LINK_TTL, MAX_BODY, WebConfig

TOKEN_ENV = "GATEWAY_TOKEN"  # noqa: S105 (the name of the variable, not a secret)
METRICS_TOKEN_ENV = "GATEWAY_METRICS_TOKEN"  # noqa: S105 (a variable's name)
# waitress reads a file in pieces as large as the socket's send buffer, which Linux sizes at
# up to 4 MiB: 50 downloads at once would then hold 200 MiB. A fixed 256 KiB buffer (the
# kernel doubles it) keeps a download at about 0.5 MiB of memory and still fills about
# 5 MB/s per stream at 100 ms round trip, far more than audio needs.
SOCKET_OPTIONS = [
    (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
    (socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024),
]
_BIND = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")


def parse_bind(value: str) -> tuple[str, int]:
    m = _BIND.match(value.strip())
    if not m or int(m.group("port")) > 65535:
        raise UsageError(f"--bind-to takes HOST:PORT (e.g. localhost:4000), not {value!r}")
    return m.group("v6") or m.group("host"), int(m.group("port"))


def resolve_token(
    token: str | None, token_file: str | None, *, given: frozenset[str] = frozenset()
) -> str:
    """The shared token; ``UsageError`` when there is none.

    Precedence: ``--token``, then ``--token-file`` on the command line, then ``GATEWAY_TOKEN``,
    then ``token``, then ``token_file`` from the configuration file. ``given`` names the
    options that came from the command line (the others, if set, came from the file).
    """
    env = os.environ.get(TOKEN_ENV, "").strip()
    candidates = [
        ("token", token if "token" in given else None),
        ("token_file", token_file if "token_file" in given else None),
        ("env", env or None),
        ("token", token),
        ("token_file", token_file),
    ]
    for kind, value in candidates:
        if not value:
            continue
        return read_secret_file(value) if kind == "token_file" else value
    raise UsageError(
        f"no token: give --token, --token-file or the {TOKEN_ENV} environment variable "
        "(the gateway will not serve without one)"
    )


def _metrics_token(path: str | None) -> str | None:
    """``--metrics-token-file``, else ``GATEWAY_METRICS_TOKEN``; ``None``: no /metrics."""
    if path:
        return read_secret_file(path)
    return os.environ.get(METRICS_TOKEN_ENV, "").strip() or None


def check_sources(configured: Configured) -> None:
    for source in configured.sources:
        try:
            source.check()
        except Unavailable as exc:
            logging.getLogger("gateway").warning("%s (serving anyway)", exc)


def proxy_settings(trusted_proxy: str) -> dict[str, Any]:
    """waitress settings: forwarded headers count only when they come from the proxy."""
    if trusted_proxy.lower() in ("", "none"):
        return {"clear_untrusted_proxy_headers": True}
    return {
        "trusted_proxy": trusted_proxy,
        "trusted_proxy_count": 1,
        "trusted_proxy_headers": {"x-forwarded-proto", "x-forwarded-host", "x-forwarded-for"},
        "clear_untrusted_proxy_headers": True,
    }


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


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
            "--token-file", type=click.Path(dir_okay=False), help="File holding the shared secret."
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
            "behind one load balancer (default: a random key per run).",
        ),
        click.option(
            "--threads",
            type=click.IntRange(1, 1024),
            default=32,
            show_default=True,
            help="Worker threads: each active search or remote-store download holds one.",
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
            "without one, /metrics is not served.",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


@dataclass
class Service:
    """Everything ``serve`` needs, checked; ``check`` reports on it without listening."""

    config: WebConfig
    configured: Configured
    host: str
    port: int
    bind_to: str
    threads: int
    trusted_proxy: str
    audit: AuditLog | None
    token_origin: str

    def close(self) -> None:
        self.configured.close()
        if self.audit is not None:
            self.audit.close()


def prepare_service(
    *,
    token: str | None,
    token_file: str | None,
    public_url: str | None,
    trusted_proxy: str,
    bind_to: str,
    link_ttl: int,
    link_key_file: str | None,
    threads: int,
    tenants_file: str | None,
    audit_log: str | None,
    metrics_token_file: str | None,
    s3_redirect: bool = False,
    **params: Any,
) -> Service:
    """Read and check every setting; open the sources (the caller closes the service)."""
    ctx = click.get_current_context()
    given = frozenset(
        name
        for name in ("token", "token_file")
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    )
    tenants = TenantRegistry.from_file(Path(tenants_file)) if tenants_file else None
    token_given = token or token_file or os.environ.get(TOKEN_ENV, "").strip()
    secret = (
        resolve_token(token, token_file, given=given) if tenants is None or token_given else None
    )
    host, port = parse_bind(bind_to)
    if public_url and not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", public_url):
        raise UsageError(f"--public-url takes http(s)://HOST[/PATH], not {public_url!r}")
    signer = LinkSigner.from_file(Path(link_key_file)) if link_key_file else LinkSigner.random()
    metrics_token = _metrics_token(metrics_token_file)
    configured = configure(params)
    audit = None
    try:
        if tenants is not None:
            check_tenant_sources(configured.sources)
            tenants.check_secret_not(secret)
        audit = AuditLog.to(audit_log) if audit_log else None
    except BaseException:
        configured.close()
        raise
    config = WebConfig(
        sources=configured.sources,
        settings=configured.settings,
        token=secret,
        signer=signer,
        link_ttl=link_ttl,
        public_url=public_url,
        layout=params.get("layout"),
        tenants=tenants,
        metrics_token=metrics_token,
        redirect_to_store=s3_redirect,
    )
    origin = "none (tenants only)" if secret is None else _origin(given, token, token_file)
    return Service(config, configured, host, port, bind_to, threads, trusted_proxy, audit, origin)


def _origin(given: frozenset[str], token: str | None, token_file: str | None) -> str:
    if "token" in given:
        return "--token"
    if "token_file" in given:
        return "--token-file"
    if os.environ.get(TOKEN_ENV, "").strip():
        return TOKEN_ENV
    return "the configuration file's token" if token else "the configuration file's token_file"


@click.command("serve")
@serve_options
def serve_command(**options: Any) -> None:
    """Serve QueueMetrics searches and signed downloads over HTTP."""
    import waitress

    from gateway.web.accesslog import AccessLog
    from gateway.web.app import create_app

    service = prepare_service(**options)
    try:
        check_sources(service.configured)
        access = logging.getLogger("gateway.access")
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access.addHandler(handler)
        access.setLevel(logging.INFO)
        access.propagate = False
        observers: list[RequestObserver] = [service.config.metrics]
        if service.audit is not None:
            observers.append(service.audit)
        try:
            server = waitress.create_server(
                AccessLog(create_app(service.config), observers),
                host=service.host,
                port=service.port,
                threads=service.threads,
                ident="recording-gateway",
                max_request_body_size=MAX_BODY * 16,
                **proxy_settings(service.trusted_proxy),
            )
        except OSError as exc:
            raise ConfigError(f"cannot listen on {service.bind_to}: {exc.strerror}") from None
        # Not a create_server keyword; applied to each accepted connection.
        server.adj.socket_options = SOCKET_OPTIONS
        if service.config.tenants is not None:
            install_reload(service.config.tenants)  # before the banner: SIGHUP never kills us
        config = service.config
        sources = ", ".join(s.id for s in config.sources)
        click.echo(
            f"gateway: serving on {_address(server)} | sources: {sources} | "
            f"layout: {_layout_text(config)} | links valid {config.link_ttl}s"
            + (f" at {config.public_url}" if config.public_url else ""),
        )
        sys.stdout.flush()
        signal.signal(signal.SIGTERM, _stop)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
        click.echo("gateway: stopped")
    finally:
        service.close()


def _layout_text(config: WebConfig) -> str:
    """``--layout``, or what the sources' paths say (their placeholders are their layout)."""
    if config.layout:
        return config.layout
    patterned = any("%" in source.id for source in config.sources)
    return "placeholders of each path" if patterned else "flat"


def _address(server: Any) -> str:
    listening = getattr(server, "effective_listen", None) or [
        (server.effective_host, server.effective_port)
    ]
    return " and ".join(
        f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"
        for host, port in listening
    )
