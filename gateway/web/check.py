"""``gateway check``: read the configuration ``serve`` would run with, probe every source, and
say what a search for a call of today would list. Starts no server.

Exit status: 0 when everything answers, 3 when a source cannot be reached or refuses the
credentials, 2 for a configuration error (the first one found, as ``serve`` would stop on it).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import click

from gateway.errors import GatewayError, NotFound, Unavailable, UsageError
from gateway.query import Query, search_days
from gateway.remote import RemoteSource
from gateway.sources import StoreSource
from gateway.web.command import Service, prepare_service, serve_options

LISTING_LIMIT = 10_000
"""A check counts at most this many files per folder (a flat layout lists the whole tree)."""


@click.command("check")
@serve_options
def check_command(**options: Any) -> None:
    """Check the configuration and probe every source, without serving."""
    service = prepare_service(**options)
    try:
        failures = report(service)
    finally:
        service.close()
    if failures:
        click.echo(f"gateway: {failures} source(s) could not be reached", err=True)
        raise SystemExit(Unavailable.exit_code)
    click.echo("gateway: configuration OK")


def report(service: Service) -> int:
    """Print one section per setting and source; return how many sources failed."""
    config = service.config
    tenants = config.tenants.names if config.tenants is not None else []
    click.echo(f"listen: {service.bind_to} with {service.threads} threads")
    click.echo(f"public URL: {config.public_url or 'from each request (and X-Forwarded-*)'}")
    click.echo(f"token: from {service.token_origin}")
    click.echo(f"tenants: {len(tenants) if config.tenants is not None else 'none'}")
    click.echo(f"links: valid {config.link_ttl}s, {config.signer.describe()}")
    click.echo(f"metrics: {'/metrics with a bearer token' if config.metrics_token else 'off'}")
    click.echo(f"audit log: {'on' if service.audit is not None else 'off'}")
    now = datetime.now(config.settings.timezone)
    click.echo(f"time zone: {config.settings.timezone.key}, today is {now.date().isoformat()}")
    failures = 0
    for number, source in enumerate(config.sources, 1):
        click.echo(f"source {number}: {source.id}")
        try:
            source.check()
        except Unavailable as exc:
            failures += 1
            click.echo(f"  UNREACHABLE: {exc}")
            continue
        click.echo("  reachable")
        if not isinstance(source, RemoteSource):
            _today(source, now, tenants[0] if tenants else None, service)
    return failures


def _today(source: StoreSource, now: datetime, tenant: str | None, service: Service) -> None:
    """Which folders a search for a call started now would list, and how many files are in."""
    settings = service.config.settings
    query = Query("0000000000.0", start=now, tenant=tenant)  # any call of today
    days = search_days(now, settings.timezone, settings.lookback)
    try:
        scans = source.layout.scans(query, days)
    except UsageError as exc:
        click.echo(f"  today: {exc}")
        return
    folders = [(f, scan.recursive) for scan in scans for f in source.expand(scan.prefix)]
    if not folders:
        click.echo("  today: no folder of today exists yet (no call recorded today?)")
    for folder, recursive in folders:
        where = (folder or "(the root)") + (" and below" if recursive else "")
        try:
            listing = source.store.list(folder, recursive=recursive)
            count = sum(1 for _ in itertools.islice(listing, LISTING_LIMIT))
        except NotFound:
            click.echo(f"  today: {where} does not exist yet (no call recorded today?)")
            continue
        except GatewayError as exc:
            click.echo(f"  today: {where}: {exc}")
            continue
        more = "+" if count == LISTING_LIMIT else ""
        click.echo(f"  today: {where} holds {count}{more} entries")
