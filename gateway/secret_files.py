"""Reading secrets from files: tokens (``--token-file``, a peer's ``token_file``, the metrics
token) and store passwords (``SourceURL.secret``). Public: plugins use it for their own secrets.
"""

from __future__ import annotations

from pathlib import Path

from gateway.errors import UsageError


def read_secret_file(
    path: str | Path, what: str = "token file", *, keep_spaces: bool = False
) -> str:
    """The secret in ``path``: without surrounding white space, or with ``keep_spaces`` only
    without its final line end (for passwords, which may start or end with spaces).

    ``UsageError`` names the file (as ``what``) when it cannot be read or is empty; the
    message never quotes the file's content.
    """
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise UsageError(f"cannot read the {what} {path}") from None
    secret = text.removesuffix("\n").removesuffix("\r") if keep_spaces else text.strip()
    if not secret:
        raise UsageError(f"the {what} {path} is empty")
    return secret
