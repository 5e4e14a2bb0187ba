"""Running the web service under waitress (``gateway serve``, after its settings are read).

At start-up every source is checked: a missing folder or bucket is a configuration error (exit
2); an unreachable store only warns, since a NAS that is down now may be back before the first
search (which then answers 503 until it is).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import click
import waitress

from gateway.configuration import ServerSettings
from gateway.errors import ConfigError, Unavailable
from gateway.reload import Reloader, install_reload
from gateway.source import Source
from gateway.web.accesslog import AccessLog, RequestObserver
from gateway.web.app import create_app
from gateway.web.audit import AuditLog
from gateway.web.capacity import accept_in_bursts, capacity_settings, listeners
from gateway.web.config import MAX_BODY, WebConfig
from gateway.web.drain import DrainingChannel, GracefulStop
from gateway.web.malloc import limit_malloc_arenas
from gateway.web.sendfile import SOCKET_OPTIONS, OfferSendfile


def web_config(settings: ServerSettings) -> WebConfig:
    configured = settings.configured
    return WebConfig(
        sources=configured.sources,
        settings=configured.settings,
        token=settings.token,
        signer=settings.signer,
        link_ttl=settings.link_ttl,
        public_url=settings.public_url,
        layout=settings.layout,
        tenants=settings.tenants,
        metrics_token=settings.metrics_token,
        redirect_to_store=settings.redirect_to_store,
        searcher=configured.searcher,
        auth_failures=settings.auth_failures,
    )


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


def serve(settings: ServerSettings) -> None:
    """Listen and serve until SIGTERM or Ctrl-C, then stop gracefully (``gateway.web.drain``:
    new connections refused, those open finished within ``settings.stop_timeout``); the
    caller closes ``settings``."""
    limit_malloc_arenas()  # before any worker thread exists
    install_reload(Reloader.of(settings))  # first: a SIGHUP while starting never kills us
    check_sources(settings.configured.sources)
    audit = AuditLog(settings.audit) if settings.audit is not None else None
    _run(settings, web_config(settings), audit)


def check_sources(sources: Sequence[Source]) -> None:
    """Probe every source at once (a peer that does not answer costs ``--peer-timeout``, not
    that times the number of such peers); warn about those that cannot be reached."""
    with ThreadPoolExecutor(max_workers=max(1, len(sources))) as pool:
        failures = pool.map(_unreachable, sources)
    for failure in failures:
        if failure is not None:
            logging.getLogger("gateway").warning("%s (serving anyway)", failure)


def _unreachable(source: Source) -> Unavailable | None:
    try:
        source.check()
    except Unavailable as exc:
        return exc
    return None


def _run(settings: ServerSettings, config: WebConfig, audit: AuditLog | None) -> None:
    access = logging.getLogger("gateway.access")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    observers: list[RequestObserver] = [config.metrics]
    if audit is not None:
        observers.append(audit)
    stop = GracefulStop(settings.stop_timeout)
    try:
        server = waitress.create_server(
            OfferSendfile(AccessLog(stop.app(create_app(config)), observers)),
            host=settings.host,
            port=settings.port,
            threads=settings.threads,
            ident="recording-gateway",
            max_request_body_size=MAX_BODY * 16,
            **capacity_settings(),
            **proxy_settings(settings.trusted_proxy),
        )
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.bind_to}: {exc.strerror}") from None
    # Not a create_server keyword; applied to each accepted connection.
    server.adj.socket_options = SOCKET_OPTIONS
    for listener in listeners(server):  # one per address (localhost: IPv4 and IPv6)
        listener.channel_class = DrainingChannel
        accept_in_bursts(listener)
    stop.install(server)  # before the banner too: SIGTERM and Ctrl-C start a graceful stop
    sources = ", ".join(s.id for s in config.sources)
    click.echo(
        f"gateway: serving on {_address(server)} | sources: {sources} | "
        f"layout: {_layout_text(config)} | links valid {config.link_ttl}s"
        + (f" at {config.public_url}" if config.public_url else ""),
    )
    sys.stdout.flush()
    stop.run()


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
