"""Real Caddy in front (tls internal): links carry the public HTTPS URL, downloads seek."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import free_port, wait_until
from tests.web.conftest import TOKEN, Archive, Gateway

pytestmark = pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed")

DEPLOYED_CADDYFILE = Path(__file__).parents[2] / "deploy" / "Caddyfile"
# The production Caddyfile, run on loopback: these fill its test-only placeholders.
GLOBAL_OPTIONS = """admin off
skip_install_trust
auto_https disable_redirects
http_port {http_port}
https_port {https_port}
storage file_system {dir}/data"""
SITE_OPTIONS = "bind 127.0.0.1\ntls internal"


@pytest.fixture
def caddy(tmp_path: Path, start_gateway: Any) -> Iterator[tuple[str, Path, Gateway]]:
    gw = start_gateway()  # no --public-url: the links come from the proxy's headers
    gateway_port = int(gw.url.rsplit(":", 1)[1])
    https_port = free_port()
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
        "GATEWAY_DOMAIN": f"https://localhost:{https_port}",
        "GATEWAY_UPSTREAM": f"127.0.0.1:{gateway_port}",
        "CADDY_GLOBAL_OPTIONS": GLOBAL_OPTIONS.format(
            http_port=free_port(), https_port=https_port, dir=tmp_path
        ),
        "CADDY_SITE_OPTIONS": SITE_OPTIONS,
    }
    log = (tmp_path / "caddy.log").open("wb")
    proc = subprocess.Popen(
        ["caddy", "run", "--config", str(DEPLOYED_CADDYFILE), "--adapter", "caddyfile"],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    root_cert = tmp_path / "data" / "pki" / "authorities" / "local" / "root.crt"
    url = f"https://localhost:{https_port}"

    def serving() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"caddy exited: {(tmp_path / 'caddy.log').read_text()}")
        try:
            return (
                root_cert.exists()
                and requests.get(f"{url}/healthz", verify=root_cert, timeout=2).ok
            )
        except requests.RequestException:
            return False

    try:
        wait_until(
            serving, 20, 0.1, what=lambda: f"caddy at {url}: {(tmp_path / 'caddy.log').read_text()}"
        )
    except (AssertionError, RuntimeError):
        proc.kill()
        proc.wait(10)
        raise
    yield url, root_cert, gw
    proc.terminate()
    proc.wait(10)
    log.close()


def test_links_through_caddy_are_https_and_seek(
    caddy: tuple[str, Path, Gateway], archive: Archive
) -> None:
    url, root_cert, gw = caddy
    call = archive.call_with(1)
    content = (archive.root / call.files[0]).read_bytes()
    answer = requests.post(
        f"{url}/search/",
        data={"searchtoken": TOKEN, "callid": call.callid, "timestamp": call.start},
        verify=root_cert,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    (f,) = answer.json()["files"]
    assert f["url"].startswith(f"{url}/files/")
    middle = len(content) // 2
    part = requests.get(
        f["url"], headers={"Range": f"bytes={middle}-{middle + 999}"}, verify=root_cert, timeout=10
    )
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes {middle}-{middle + 999}/{len(content)}"
    assert part.content == content[middle : middle + 1000]
    assert part.headers["Strict-Transport-Security"].startswith("max-age=")  # the deployed file
    assert requests.get(f["url"], verify=root_cert, timeout=10).content == content
    # the gateway itself, asked directly, still answers with its own address
    direct = gw.links(call)[0]["url"]
    assert direct.startswith(f"{gw.url}/files/")
