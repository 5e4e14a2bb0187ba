"""SIGHUP re-reads the tenants file while searches keep running."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import requests

from tests.conftest import wait_until
from tests.tenants.conftest import SECRETS, search, write_tenants
from tests.web.conftest import Gateway
from tests.web.test_reload import write_secret

T1, T2, T3 = "tenant1.example", "tenant2.example", "other.example"
SHARED = "1772700000.555"


def status(gw: Gateway, tenant: str, secret: str) -> int:
    return search(gw, tenant=tenant, token=secret, callid=SHARED).status_code


def test_reload_while_searching(start: Callable[..., Gateway], tenants_file: Path) -> None:
    gw = start()
    errors: list[str] = []
    done = threading.Event()
    counted = [0]

    def keep_searching() -> None:
        with requests.Session() as session:
            while not done.is_set() and counted[0] < 5000:
                answer = session.post(
                    f"{gw.url}/search/",
                    data={"tenant": T1, "token": SECRETS[T1], "callid": SHARED},
                    timeout=30,
                )
                counted[0] += 1
                if answer.status_code != 200 or len(answer.json()["files"]) != 1:
                    errors.append(f"{answer.status_code} {answer.text}")

    worker = threading.Thread(target=keep_searching)
    worker.start()
    try:
        wait_until(lambda: counted[0] > 20, 15, what="searches to run")
        # add a tenant, remove another, several reloads in a row
        new_secret = "s3cret-new-77aa"
        write_tenants(tenants_file, {T1: SECRETS[T1], T3: new_secret})
        for _ in range(3):
            gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: status(gw, T3, new_secret) == 200, 15, what="the new tenant")
        assert status(gw, T2, SECRETS[T2]) == 401
        # a broken file keeps the tenants of the last good one
        tenants_file.write_text('[{"tenant": "broken", "secret": ')
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in gw.log(), 15, what="the reload error")
        assert status(gw, T3, new_secret) == 200
        assert status(gw, T1, SECRETS[T1]) == 200
        before = counted[0]
        wait_until(lambda: counted[0] > before + 20, 15, what="more searches")
    finally:
        done.set()
        worker.join(30)
    assert counted[0] > 40
    assert errors == []
    log = gw.log()
    assert "reload: tenants from" in log
    assert "added: other.example" in log
    assert "removed: tenant2.example" in log
    assert "nothing changed: " in log
    for secret in (*SECRETS.values(), new_secret):
        assert secret not in log
    assert gw.proc.poll() is None  # SIGHUP never stops the server


def test_changed_secret_takes_effect(start: Callable[..., Gateway], tenants_file: Path) -> None:
    gw = start()
    assert status(gw, T1, SECRETS[T1]) == 200
    write_tenants(tenants_file, {T1: "s3cret-rotated-1", T2: SECRETS[T2]})
    gw.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: status(gw, T1, "s3cret-rotated-1") == 200, 15, what="the new secret")
    assert status(gw, T1, SECRETS[T1]) == 401
    assert status(gw, T2, SECRETS[T2]) == 200
    changed = next(line for line in gw.log().splitlines() if "reload: tenants from" in line)
    assert changed.endswith(f"2 tenant(s); new secret: {T1}")  # T2 kept its secret
    for secret in ("s3cret-rotated-1", *SECRETS.values()):
        assert secret not in gw.log()


def test_reload_refuses_a_file_that_would_break_isolation(
    start: Callable[..., Gateway], tenants_file: Path
) -> None:
    gw = start("--token", "admin-token-5b1e0c7d")
    # two tenants with one secret, then a tenant whose secret is the admin token
    for bad in ({T1: SECRETS[T1], T2: SECRETS[T1]}, {T1: "admin-token-5b1e0c7d"}):
        marker = gw.log().count("reload refused")
        write_tenants(tenants_file, bad)
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda m=marker: gw.log().count("reload refused") > m, 15, what="refusal")  # type: ignore[misc]
        assert status(gw, T1, SECRETS[T1]) == 200
        assert status(gw, T2, SECRETS[T2]) == 200
    assert "admin-token-5b1e0c7d" not in gw.log()


def test_a_fifo_never_blocks_later_reloads(
    start: Callable[..., Gateway], tenants_file: Path
) -> None:
    """A FIFO put in place of the tenants file is refused at once; the next valid file (which
    removes a tenant) is applied. It used to hang the reload for ever, under the lock every
    later reload waited for, so the removed tenant kept its access."""
    gw = start()
    assert status(gw, T2, SECRETS[T2]) == 200
    tenants_file.unlink()
    os.mkfifo(tenants_file, 0o600)
    writers: list[int] = []

    def fifo_handled() -> bool:
        """Refused, or (the bug) a reload is waiting on the FIFO: we hold it open, empty."""
        if "not a regular file" in gw.log():
            return True
        try:
            writers.append(os.open(tenants_file, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:  # ENXIO: nobody reads it
            return False
        return True

    try:
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(fifo_handled, 15, what="the reload to reach the FIFO")
        assert status(gw, T2, SECRETS[T2]) == 200  # the last good tenants are kept
        tenants_file.unlink()
        write_tenants(tenants_file, {T1: SECRETS[T1]})
        gw.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: status(gw, T2, SECRETS[T2]) == 401, 15, what="tenant2 removed")
        assert status(gw, T1, SECRETS[T1]) == 200
        assert "cannot read the tenants file" in gw.log()
    finally:
        for fd in writers:
            os.close(fd)


def test_a_tenants_file_others_may_write_is_not_loaded(
    start: Callable[..., Gateway], tenants_file: Path
) -> None:
    gw = start()
    write_tenants(tenants_file, {T1: SECRETS[T1]})
    tenants_file.chmod(0o666)
    gw.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "may be written by others" in gw.log(), 15, what="the refusal")
    assert status(gw, T2, SECRETS[T2]) == 200


def test_a_new_token_may_not_be_a_tenants_secret(
    start: Callable[..., Gateway], tenants_file: Path
) -> None:
    """A token file rewritten with the secret of a tenant the same reload removes: between the
    two swaps that tenant's secret would be the admin token."""
    token_file = tenants_file.with_name("token")
    write_secret(token_file, "admin-token-5b1e0c7d")
    gw = start("--token-file", str(token_file))
    write_secret(token_file, SECRETS[T1])
    write_tenants(tenants_file, {T2: SECRETS[T2]})
    gw.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload refused" in gw.log(), 15, what="the refusal")
    assert f"tenant {T1!r}: its secret is the new admin token" in gw.log()
    assert status(gw, T1, "admin-token-5b1e0c7d") == 200  # the admin token is kept
    assert status(gw, T1, SECRETS[T1]) == 200  # nothing changed
    assert SECRETS[T1] not in gw.log()
