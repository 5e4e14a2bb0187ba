"""``gateway setup``: the gateway deployed on this machine in one command.

The steps are in ``gateway.cli.setup_steps``, loaded only when setup runs: what they import
(the TOML writer, the survey) would otherwise slow every other command's start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command("setup")
@click.option("--public-url", help="The name QueueMetrics and browsers reach: https://HOST[:PORT].")
@click.option("--path", help="Where the recordings are: a folder, smb://..., s3://...")
@click.option("--timezone", help="The PBX's IANA time zone (e.g. Europe/Rome).")
@click.option("--layout", help="How recordings are filed (default: the one setup recognises).")
@click.option(
    "--bind-to",
    default="127.0.0.1:4000",
    show_default=True,
    help="Where the gateway listens, behind Caddy on the same machine.",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/"),
    help="Write everything below this folder instead of / (to review, package or test it).",
)
@click.option("--print", "print_only", is_flag=True, help="Only print what would be written.")
@click.option("--force", is_flag=True, help="Replace files that exist with other content.")
def setup_command(**options: Any) -> None:
    """Set up the gateway on this machine: configuration, token, systemd unit, Caddy site."""
    from gateway.cli.setup_steps import set_up

    set_up(**options)
