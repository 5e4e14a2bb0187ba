"""``gateway av``: Uniloader's AudioVault command line, so that a ``uniloader av serve ...``
line runs with only the program name changed (docs/uniloader.md).

``gateway av serve`` is ``gateway serve``: the same options and the same function, plus the
two Uniloader options the gateway does not implement, ``--certificate`` and
``--certificate-key``. The gateway does not speak TLS itself (waitress has none): given either,
it stops before serving and prints the Caddy site block that serves HTTPS with those very
files in front of it. Serving plain HTTP on a port the administrator believes is HTTPS would
fail later, in QueueMetrics, with a far less clear error. Uniloader's published documentation
names no other ``av`` subcommand, so no other is mapped here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from gateway.cli.serve import serve_command
from gateway.configuration import parse_bind
from gateway.errors import UsageError

CERTIFICATE_OPTIONS = ("certificate", "certificate_key")
_EXAMPLE_HOST = "audiovault.example.com"


def _serve(**options: Any) -> None:
    """Refuse Uniloader's certificate options, then run ``gateway serve``'s own function."""
    certificate, key = (options.pop(name) for name in CERTIFICATE_OPTIONS)
    if certificate or key:
        raise UsageError(https_advice(certificate, key, options))
    assert serve_command.callback is not None
    serve_command.callback(**options)


def https_advice(certificate: str | None, key: str | None, options: dict[str, Any]) -> str:
    """Why ``--certificate``/``--certificate-key`` stop the command, and the Caddy site block
    (Caddy 2) that serves HTTPS with the same files in front of the gateway."""
    _, port = parse_bind(options.get("bind_to") or "localhost:4000")
    public = urlsplit(options.get("public_url") or "")
    host = public.netloc or _EXAMPLE_HOST
    cert = Path(certificate).resolve() if certificate else Path("/etc/ssl/fullchain.pem")
    private = Path(key).resolve() if key else Path("/etc/ssl/privkey.pem")
    return (
        "--certificate/--certificate-key: the gateway does not serve HTTPS itself. Leave "
        f"them out, keep it on --bind-to localhost:{port} and let Caddy serve HTTPS in front "
        "of it (deploy/Caddyfile is the tested configuration; docs/uniloader.md), with your "
        "certificate, e.g. in /etc/caddy/Caddyfile:\n"
        f"{host} {{\n"
        f"\ttls {cert} {private}\n"
        f"\treverse_proxy localhost:{port}\n"
        "}\n"
        "or without the tls line, for a certificate Caddy obtains and renews itself."
    )


serve_av_command = click.Command(
    "serve",
    callback=_serve,
    params=[
        *serve_command.params,
        click.Option(
            ["--certificate"],
            type=click.Path(dir_okay=False),
            help="Uniloader's HTTPS certificate: not supported (HTTPS is served by Caddy in "
            "front of the gateway; the command stops and prints the Caddy lines).",
        ),
        click.Option(
            ["--certificate-key"],
            type=click.Path(dir_okay=False),
            help="Uniloader's HTTPS private key: not supported, as --certificate.",
        ),
    ],
    help="Serve as 'gateway serve' does, under Uniloader's name (uniloader av serve).",
    context_settings=serve_command.context_settings,
)


@click.group("av")
def av_group() -> None:
    """Uniloader AudioVault's command line: 'av serve' is 'serve' (docs/uniloader.md)."""


av_group.add_command(serve_av_command)
