"""The ``gateway`` group: every command, and errors turned into exit statuses."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from gateway import __version__
from gateway.cli.av import av_group
from gateway.cli.find import get_command, search_command
from gateway.cli.info import demo_command, plugins_command
from gateway.cli.output import INTERNAL_ERROR, fail
from gateway.cli.serve import check_command, serve_command
from gateway.cli.setup import setup_command
from gateway.errors import GatewayError


class GatewayGroup(click.Group):
    """Turns the project's errors into one stderr line and the documented exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GatewayError as exc:
            fail(str(exc), exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            sys.exit(1)
        except Exception as exc:  # never a traceback in front of a user
            logging.getLogger("gateway").debug("internal error", exc_info=True)
            fail(f"internal error: {type(exc).__name__}", INTERNAL_ERROR)


@click.group(cls=GatewayGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gateway")
def main() -> None:
    """Find call recordings on disk, SMB or S3 and serve them through signed links."""
    logging.basicConfig(level=logging.WARNING, format="gateway: warning: %(message)s")


for command in (
    search_command,
    get_command,
    plugins_command,
    demo_command,
    serve_command,
    check_command,
    av_group,
    setup_command,
):
    main.add_command(command)
