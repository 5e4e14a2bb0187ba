"""Reading secrets from files: tokens (``--token-file``, a peer's ``token_file``, the metrics
token), store passwords (``SourceURL.secret``), link keys and the tenants file. Public: plugins
use ``read_secret_file`` for their own secrets. ``Secret`` is a token the server checks
requests against, which a reload (``gateway.reload``) may re-read from its file.

Every such file goes through ``read_private_text``, which never waits on anything but a regular
file and refuses a file that others could have written (as ssh does with its keys).
"""

from __future__ import annotations

import hmac
import logging
import os
import stat
from pathlib import Path

from gateway.errors import ConfigError, GatewayError, UsageError

log = logging.getLogger("gateway.secret_files")

MAX_FILE_BYTES = 1024 * 1024
"""Largest file read (a tenants file of some thousand tenants is well below)."""
_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def read_private_text(
    path: str | Path,
    what: str,
    *,
    max_bytes: int = MAX_FILE_BYTES,
    error: type[GatewayError] = ConfigError,
) -> str:
    """The UTF-8 text of the file at ``path``, which holds secrets.

    - It is opened without blocking and what was opened is checked (``fstat``): a FIFO, a
      device, a socket or a folder is refused at once, never waited on. A regular file larger
      than ``max_bytes`` is refused; nothing more than that is read.
    - A file that belongs to another user than root or the one running the gateway, or that
      the group or others may write, is refused (whoever can write it chooses the secret);
      one that others may read is read, with a warning (as ssh treats its keys).

    Raises ``error`` naming the file as ``what``; the message never quotes the content.
    """
    shown = Path(path)
    try:
        fd = os.open(shown.expanduser(), _FLAGS)
    except OSError as exc:
        raise error(f"cannot read the {what} {shown}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"cannot read the {what} {shown}: not a regular file")
        if info.st_uid not in (0, os.geteuid()):
            raise error(
                f"the {what} {shown} belongs to another user (uid {info.st_uid}), who could "
                "rewrite it: it must belong to root or to the user the gateway runs as"
            )
        if info.st_mode & _WRITABLE_BY_OTHERS:
            raise error(
                f"the {what} {shown} may be written by others (mode "
                f"{stat.S_IMODE(info.st_mode):04o}): make it writable by its owner only "
                "(chmod go-w)"
            )
        if info.st_mode & stat.S_IROTH:
            log.warning(
                "the %s %s may be read by any user (mode %04o): chmod o-r",
                what,
                shown,
                stat.S_IMODE(info.st_mode),
            )
        try:
            data = file.read(max_bytes + 1)
        except OSError as exc:
            raise error(f"cannot read the {what} {shown}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise error(f"the {what} {shown} is larger than {max_bytes} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"cannot read the {what} {shown}: not UTF-8 text") from None


def read_secret_file(
    path: str | Path, what: str = "token file", *, keep_spaces: bool = False
) -> str:
    """The secret in ``path``: without surrounding white space, or with ``keep_spaces`` only
    without its final line end (for passwords, which may start or end with spaces).

    Read by ``read_private_text`` (so a FIFO, a huge file or a file others may write is
    refused). ``UsageError`` names the file (as ``what``) when it cannot be read or is empty;
    the message never quotes the file's content.
    """
    text = read_private_text(path, what, error=UsageError)
    secret = text.removesuffix("\n").removesuffix("\r") if keep_spaces else text.strip()
    if not secret:
        raise UsageError(f"the {what} {path} is empty")
    return secret


class Secret:
    """A token requests are checked against (the search token, the metrics token), compared in
    constant time. When it came from a file (``path``), ``read`` gives the file's current
    secret and ``replace`` puts it in use; a token given on the command line, in the
    environment or in the configuration file itself has no ``path`` and never changes."""

    def __init__(self, value: str, path: Path | None = None, what: str = "token file") -> None:
        self._value = value.encode("utf-8")
        self.path = path
        self.what = what

    @property
    def value(self) -> str:
        return self._value.decode("utf-8")

    def matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode("utf-8"), self._value)

    def read(self) -> str:
        """The secret the file holds now (``UsageError`` as ``read_secret_file``); the current
        value when there is no file."""
        return read_secret_file(self.path, self.what) if self.path is not None else self.value

    def replace(self, value: str) -> bool:
        """Use ``value`` from now on; whether it differs from the one in use."""
        changed = not self.matches(value)
        self._value = value.encode("utf-8")  # one assignment: old or new, never a mix
        return changed
