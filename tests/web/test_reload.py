"""SIGHUP (``systemctl reload``) re-reads the link key file and the token files of a running
gateway: a key rotation and a token change need no restart, a bad file changes nothing, and a
gateway without any such file keeps running with its links valid."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import requests

from gateway.signing import LinkSigner
from tests.conftest import wait_until
from tests.web.conftest import TOKEN, Archive, Gateway

OLD_KEY = "old-link-key-7f3a9c1e5b2d8f4a6c0e"
NEW_KEY = "new-link-key-2b8e4d6f0a1c3e5f7a9b"
WEAK_KEY = "k" * 40


def write_secret(path: Path, text: str) -> Path:
    """Replace ``path`` atomically (a reload never sees half a file), mode 0600."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return path


def hang_up(gw: Gateway, expect: str) -> None:
    """Send SIGHUP and wait until the log says ``expect`` once more than before."""
    before = gw.log().count(expect)
    gw.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: gw.log().count(expect) > before, 15, what=lambda: f"{expect!r} in log")


def fetch(url: str) -> int:
    return requests.get(url, headers={"Range": "bytes=0-99"}, timeout=30).status_code


def test_sighup_without_files_keeps_serving_with_valid_links(
    start_gateway: Callable[..., Gateway], archive: Archive
) -> None:
    """The shipped unit's ExecReload sends SIGHUP; a gateway with a random per-run key and no
    token file used to die of it (status 129) and come back with a new key."""
    gw = start_gateway()
    call = archive.call_with(1)
    url = gw.links(call)[0]["url"]
    for _ in range(3):
        hang_up(gw, "nothing to re-read")
    assert gw.proc.poll() is None
    assert fetch(url) == 206
    assert gw.links(call)


def test_live_key_rotation_without_restart(
    start_gateway: Callable[..., Gateway], archive: Archive, tmp_path: Path
) -> None:
    keys = write_secret(tmp_path / "link.keys", OLD_KEY + "\n")
    gw = start_gateway("--link-key-file", str(keys))
    call = archive.call_with(1)
    old_link = gw.links(call)[0]["url"]

    # 1. the new key first, the old one second: old links still open, new ones use the new key
    write_secret(keys, f"{NEW_KEY}\n{OLD_KEY}\n")
    hang_up(gw, "reload: link keys")
    assert fetch(old_link) == 206
    new_link = gw.links(call)[0]["url"]
    signed = new_link.split("/files/", 1)[1].split("/")[0]
    assert LinkSigner([NEW_KEY]).verify(signed).key  # signed with the new key alone

    # 2. the old key removed: its links are refused, the new ones still open
    write_secret(keys, NEW_KEY + "\n")
    hang_up(gw, "reload: link keys")
    assert fetch(old_link) == 403
    assert fetch(new_link) == 206

    # 3. a bad file (a weak key) changes nothing
    write_secret(keys, WEAK_KEY + "\n")
    hang_up(gw, "reload refused")
    assert fetch(new_link) == 206
    log = gw.log()
    assert "a new signing key" in log
    assert "1 removed" in log
    for key in (OLD_KEY, NEW_KEY, WEAK_KEY):
        assert key not in log
    assert gw.proc.poll() is None


def test_token_files_are_reread(
    start_gateway: Callable[..., Gateway], archive: Archive, tmp_path: Path
) -> None:
    token_file = write_secret(tmp_path / "token", TOKEN + "\n")
    metrics_file = write_secret(tmp_path / "metrics-token", "metrics-token-0a9b8c7d6e5f\n")
    gw = start_gateway(
        "--token-file", str(token_file), "--metrics-token-file", str(metrics_file), token=None
    )
    call = archive.call_with(1)

    def search(token: str) -> int:
        form = {"token": token, "callid": call.callid, "timestamp": call.start}
        return requests.post(f"{gw.url}/search/", data=form, timeout=30).status_code

    def scrape(token: str) -> int:
        bearer = {"Authorization": f"Bearer {token}"}
        return requests.get(f"{gw.url}/metrics", headers=bearer, timeout=30).status_code

    assert search(TOKEN) == 200
    write_secret(token_file, "rotated-search-token-51c9e\n")
    write_secret(metrics_file, "rotated-metrics-token-d04f7\n")
    hang_up(gw, "the search token changed")
    assert search(TOKEN) == 401
    assert search("rotated-search-token-51c9e") == 200
    assert scrape("metrics-token-0a9b8c7d6e5f") == 401
    assert scrape("rotated-metrics-token-d04f7") == 200

    # the metrics token may not become the search token: refused, both stay as they were
    write_secret(metrics_file, "rotated-search-token-51c9e\n")
    hang_up(gw, "reload refused")
    assert "the metrics token is the search token" in gw.log()
    assert scrape("rotated-metrics-token-d04f7") == 200
    assert search("rotated-search-token-51c9e") == 200
    for secret in (TOKEN, "rotated-search-token-51c9e", "rotated-metrics-token-d04f7"):
        assert secret not in gw.log()
