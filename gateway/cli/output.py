"""How the command line ends: one line on stderr and the documented exit status; and text
from the archive made safe for a terminal.

Exit statuses: 0 found/done, 1 nothing found, 2 usage or configuration error, 3 a store could
not be reached or refused the credentials, 70 an internal error. Never a traceback.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

INTERNAL_ERROR = 70


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"gateway: error: {message}", err=True)
    sys.exit(code)


def terminal_safe(text: str) -> str:
    """``text`` with its control characters written as escapes (``\\x1b``): a file name on
    a share can hold anything, and a terminal obeys escape sequences it is sent."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
