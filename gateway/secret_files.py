"""Reading a token from a file (``--token-file``, a peer's ``token_file``, the metrics token)."""

from __future__ import annotations

from pathlib import Path

from gateway.errors import UsageError


def read_token_file(path: str | Path, what: str = "token file") -> str:
    """The token in ``path``, without surrounding white space.

    ``UsageError`` names the file (as ``what``) when it cannot be read or is empty; the
    message never quotes the file's content.
    """
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        raise UsageError(f"cannot read the {what} {path}") from None
    if not token:
        raise UsageError(f"the {what} {path} is empty")
    return token
