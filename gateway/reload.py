"""Re-reading the secret files while serving: ``SIGHUP`` (``systemctl reload``).

What a reload re-reads: the tenants file (``--tenants``), the link key file
(``--link-key-file``: its first key signs from now on, every key it lists verifies) and the token
files (``--token-file`` or ``token_file``, ``--metrics-token-file``). A token given on the command
line, in the environment or in the configuration file itself stays as it is; so does every
other setting (a new ``--path`` needs a restart). A gateway without any of those files accepts
the signal and says that there was nothing to re-read: a reload never stops a gateway.

All or nothing: every file is read and every rule checked as at start (``check_tokens``:
the metrics token is not the search token, no tenant's secret is a token), and only then is
anything put in use. On any error nothing changes and one line says why. Otherwise one line
says what changed, never a secret.

Reloads run on a thread of their own, never on the server's loop, and never wait for each
other: each reads the files by itself, and one is applied only if no reload that started after
it was applied first, so a file on a hung disk never blocks or undoes a newer reload.
"""

from __future__ import annotations

import itertools
import logging
import signal
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.configuration import ServerSettings, check_tokens
from gateway.errors import GatewayError
from gateway.secret_files import Secret
from gateway.signing import LinkSigner, read_key_file
from gateway.tenants import Tenant, TenantRegistry, check_not_tokens, read_tenants

log = logging.getLogger("gateway.reload")


@dataclass(frozen=True)
class _Read:
    """What the files hold now, checked, not yet in use."""

    token: str | None = field(repr=False)
    metrics: str | None = field(repr=False)
    keys: list[str] | None = field(repr=False)
    tenants: Mapping[str, Tenant] | None


class Reloader:
    """Re-reads the secret files of one running gateway and puts them in use."""

    def __init__(
        self,
        *,
        signer: LinkSigner,
        token: Secret | None = None,
        metrics_token: Secret | None = None,
        tenants: TenantRegistry | None = None,
    ) -> None:
        self._signer = signer
        self._token = token
        self._metrics = metrics_token
        self._tenants = tenants
        self._started = itertools.count(1)  # numbers reloads in the order they start
        self._applied = 0  # the number of the reload whose files are in use
        self._swap = threading.Lock()  # held to compare and swap, never while reading

    @classmethod
    def of(cls, settings: ServerSettings) -> Reloader:
        return cls(
            signer=settings.signer,
            token=settings.token,
            metrics_token=settings.metrics_token,
            tenants=settings.tenants,
        )

    def files(self) -> list[str]:
        """What a reload re-reads, e.g. ``tenants file /etc/tenants.json``."""
        named = [
            ("search token file", self._token.path if self._token else None),
            ("metrics token file", self._metrics.path if self._metrics else None),
            ("link key file", self._signer.origin),
            ("tenants file", self._tenants.path if self._tenants else None),
        ]
        return [f"{what} {path}" for what, path in named if path is not None]

    def reload(self) -> bool:
        """Read every file, check, and put the result in use; on any error keep everything as
        it is. True when the files read are in use. Safe to call from several threads."""
        number = next(self._started)
        if not self.files():
            log.info("reload: nothing to re-read (no token, key or tenants file); still serving")
            return False
        try:
            read = self._read()
        except GatewayError as exc:
            log.error("error: reload refused, nothing changed: %s", exc)
            return False
        with self._swap:
            if number < self._applied:
                log.warning("reload: a late reload was not applied, a newer one was")
                return False
            self._applied = number
            changes = self._apply(read)
        log.info("reload: %s", "; ".join(changes) if changes else "nothing changed")
        return True

    def _read(self) -> _Read:
        token = self._token.read() if self._token else None
        metrics = self._metrics.read() if self._metrics else None
        keys = read_key_file(self._signer.origin) if self._signer.origin else None
        tenants = None
        if self._tenants is not None and self._tenants.path is not None:
            tenants = read_tenants(self._tenants.path)
        origin = self._tenants.path if self._tenants is not None else None
        check_tokens(token, metrics, tenants, origin)
        if self._tenants is not None:
            # The tenants in use too: the tokens and the tenants are swapped one after the
            # other, and no request in between may find a token that is a tenant's secret.
            tokens = {"the new admin token": token, "the new metrics token": metrics}
            check_not_tokens(self._tenants.tenants, tokens, f"{origin} (in use)")
        return _Read(token, metrics, keys, tenants)

    def _apply(self, read: _Read) -> list[str]:
        changes = []
        if self._token and read.token is not None and self._token.replace(read.token):
            changes.append(f"the search token changed ({self._token.path})")
        if self._metrics and read.metrics is not None and self._metrics.replace(read.metrics):
            changes.append(f"the metrics token changed ({self._metrics.path})")
        if read.keys is not None:
            keys = self._signer.replace_keys(read.keys)
            if keys:
                changes.append(f"link keys from {self._signer.origin}: {keys}")
        if self._tenants is not None and read.tenants is not None:
            tenants = self._tenants.replace(read.tenants)
            if tenants:
                changes.append(f"tenants from {self._tenants.path}: {tenants}")
        return changes


def install_reload(reloader: Reloader) -> None:
    """Reload on ``SIGHUP``, on a thread of its own so the server's loop never waits for a
    file, and say on stderr what happened. Installed before the server listens, so a
    ``SIGHUP`` never kills a gateway (Python's default for it is to end the process)."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("gateway: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False

    def on_hangup(signum: int, frame: object) -> None:
        threading.Thread(target=reloader.reload, name="reload", daemon=True).start()

    signal.signal(signal.SIGHUP, on_hangup)
    files = reloader.files()
    log.info("SIGHUP re-reads the %s", ", the ".join(files) if files else "nothing (no files)")
