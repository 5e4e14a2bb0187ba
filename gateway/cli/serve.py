"""``gateway serve`` (the HTTP service) and ``gateway check`` (its configuration, probed).

``serve`` imports the web framework when it runs, so the other commands start without it.
``check`` reads the configuration ``serve`` would run with, probes every source and says what
a search for a call of today would list. Its exit status: 0 when everything answers, 3 when a
source cannot be reached or refuses the credentials, 2 for a configuration error (the first
one found, as ``serve`` would stop on it).
"""

from __future__ import annotations

import signal
from datetime import datetime
from typing import Any

import click
from click.core import ParameterSource

from gateway.cli.options import serve_options
from gateway.configuration import ServerSettings, prepare_server
from gateway.errors import Unavailable
from gateway.query import Query, search_days


def _prepare(options: dict[str, Any]) -> ServerSettings:
    ctx = click.get_current_context()
    given = frozenset(
        name
        for name in ("token", "token_file")
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    )
    return prepare_server(options, given=given)


@click.command("serve")
@serve_options
def serve_command(**options: Any) -> None:
    """Serve QueueMetrics searches and signed downloads over HTTP."""
    # A SIGHUP (systemctl reload) ends a process by default: until the reload is installed
    # (the first thing serve() does), one that comes while starting is ignored.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    from gateway.web.server import serve

    settings = _prepare(options)
    try:
        serve(settings)
    finally:
        settings.close()


@click.command("check")
@serve_options
def check_command(**options: Any) -> None:
    """Check the configuration and probe every source, without serving."""
    settings = _prepare(options)
    try:
        failures = report(settings)
    finally:
        settings.close()
    if failures:
        click.echo(f"gateway: {failures} source(s) could not be reached", err=True)
        raise SystemExit(Unavailable.exit_code)
    click.echo("gateway: configuration OK")


def report(settings: ServerSettings) -> int:
    """Print one section per setting and source; return how many sources failed."""
    from gateway.reload import Reloader  # link signing: only serve and check load it

    search = settings.configured.settings
    tenants = settings.tenants.names if settings.tenants is not None else []
    click.echo(f"listen: {settings.bind_to} with {settings.threads} threads")
    click.echo(f"public URL: {settings.public_url or 'from each request (and X-Forwarded-*)'}")
    click.echo(f"token: from {settings.token_origin}")
    click.echo(f"tenants: {len(tenants) if settings.tenants is not None else 'none'}")
    click.echo(f"links: valid {settings.link_ttl}s, {settings.signer.describe()}")
    click.echo(f"metrics: {'/metrics with a bearer token' if settings.metrics_token else 'off'}")
    click.echo(f"audit log: {'on' if settings.audit is not None else 'off'}")
    limit = settings.auth_failures
    click.echo(
        f"failed authentication: {limit} a minute per address and tenant, then 429"
        if limit
        else "failed authentication: never throttled (--auth-failures 0)"
    )
    files = Reloader.of(settings).files()
    click.echo(f"reload (SIGHUP): re-reads the {', the '.join(files) if files else 'nothing'}")
    now = datetime.now(search.timezone)
    click.echo(f"time zone: {search.timezone.key}, today is {now.date().isoformat()}")
    query = Query("0000000000.0", start=now, tenant=tenants[0] if tenants else None)
    days = search_days(now, search.timezone, search.lookback)
    failures = 0
    for number, source in enumerate(settings.configured.sources, 1):
        click.echo(f"source {number}: {source.id}")
        try:
            source.check()
        except Unavailable as exc:
            failures += 1
            click.echo(f"  UNREACHABLE: {exc}")
            continue
        click.echo("  reachable")
        for line in source.inspect(query, days):
            click.echo(f"  {line}")
    return failures
