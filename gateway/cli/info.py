"""``gateway plugins`` and ``gateway demo``."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.config_file import config_option
from gateway.errors import UsageError
from gateway.plugins import load_plugins
from gateway.query import parse_timezone

if TYPE_CHECKING:
    from gateway.demo import DemoLayout


@click.command("plugins")
@config_option
def plugins_command() -> None:
    """List the installed storage schemes and layouts, with their packages."""
    plugins = load_plugins()
    click.echo("Storage schemes:")
    for scheme, p in sorted(plugins.stores.items()):
        aliases = f" (also --backend {', '.join(p.item.aliases)})" if p.item.aliases else ""
        click.echo(f"  {scheme:<10} {p.package} [{p.plugin}]{aliases}: {p.item.description}")
    click.echo("Layouts:")
    for name, lp in sorted(plugins.layouts.items()):
        click.echo(f"  {name:<10} {lp.package} [{lp.plugin}]: {lp.item.description}")
    for failure in plugins.failures:
        click.echo(f"Failed: {failure.plugin} from {failure.package}: {failure.error}")
    for name in plugins.blocked:
        click.echo(f"Blocked: {name}")


@click.command("demo")
@click.argument("folder", type=click.Path(file_okay=False))
@config_option
@click.option("--days", type=click.IntRange(1, 60), default=3, show_default=True)
@click.option("--end", "end", help="Last day of the archive, YYYY-MM-DD (default: today).")
@click.option("--timezone", help="Time zone the demo PBX files its calls in.")
@click.option(
    "--layout",
    type=click.Choice(["freepbx", "fusionpbx"]),
    default="freepbx",
    show_default=True,
    help="How the demo PBX files its recordings (fusionpbx: two domains, one per tenant).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the calls as JSON.")
def demo_command(
    folder: str,
    days: int,
    end: str | None,
    timezone: str | None,
    layout: DemoLayout,
    as_json: bool,
) -> None:
    """Write a small demo archive to FOLDER and list its calls.

    Each line printed is the arguments of a `gateway search --path FOLDER --layout LAYOUT`
    that finds the call; FOLDER/demo.json (and --json) list the calls with their files, and
    with their tenant in the fusionpbx layout.
    """
    from gateway.demo import write_demo

    tz = parse_timezone(timezone)
    try:
        last = date.fromisoformat(end) if end else datetime.now(tz).date()
    except ValueError:
        raise UsageError(f"--end takes a date like 2026-03-09, not {end!r}") from None
    root = Path(folder)
    if root.exists() and any(root.iterdir()) and not (root / "demo.json").exists():
        raise UsageError(f"{root} is not empty and is not a demo archive: choose another folder")
    calls = write_demo(root, end=last, days=days, tz=tz, layout=layout)
    listing: list[dict[str, Any]] = []
    for c in calls:
        entry: dict[str, Any] = {"callid": c.callid, "start": c.start.isoformat(), "files": c.files}
        if c.tenant is not None:  # FreePBX listings stay as they were
            entry["tenant"] = c.tenant
        listing.append(entry)
    (root / "demo.json").write_text(json.dumps(listing, indent=2))
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    click.echo(
        f"Wrote {sum(len(c.files) for c in calls)} recordings of {len(calls)} calls to {root}"
    )
    if layout != "freepbx":
        click.echo(f"Search them with: gateway search --path {root} --layout {layout}, then:")
    for call in calls:
        tenant = f" --tenant {call.tenant}" if call.tenant is not None else ""
        click.echo(f"  --callid {call.callid} --timestamp {call.start.isoformat()}{tenant}")
