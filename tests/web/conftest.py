"""A demo archive and real ``gateway serve`` processes on free loopback ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from gateway.demo import write_demo
from tests.conftest import GATEWAY, free_port, wait_until

TOKEN = "tok-3d1f9c2e-web-tests"
TZ = "Europe/Rome"


@dataclass(frozen=True)
class Call:
    callid: str
    start: str
    files: list[str]


@dataclass
class Archive:
    root: Path
    calls: list[Call]

    def call_with(self, n_files: int) -> Call:
        return next(c for c in self.calls if len(c.files) == n_files)


def make_archive(root: Path) -> Archive:
    calls = write_demo(root, end=date(2026, 3, 9), days=3, tz=ZoneInfo(TZ))
    return Archive(root, [Call(c.callid, c.start.isoformat(), list(c.files)) for c in calls])


def with_big_file(root: Path, words: int) -> tuple[Archive, bytes]:
    """A demo archive whose first one-file call is made big: after its WAV header, ``words``
    4-byte words each holding their own index (a byte from the wrong offset shows)."""
    archive = make_archive(root)
    path = archive.root / archive.call_with(1).files[0]
    content = path.read_bytes()[:44] + array("I", range(words)).tobytes()
    path.write_bytes(content)
    return archive, content


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return make_archive(tmp_path_factory.mktemp("archive"))


class Gateway:
    """A running ``gateway serve``; ``url`` is where it listens."""

    def __init__(
        self,
        args: list[str],
        log: Path,
        env: dict[str, str] | None = None,
        command: tuple[str, ...] = ("serve",),
    ) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [*GATEWAY, *command, *args],
            stdout=subprocess.PIPE,
            stderr=self._log,
            env={**os.environ, **(env or {})},
        )
        assert self.proc.stdout is not None
        self.banner = self.proc.stdout.readline().decode()
        if not self.banner.startswith("gateway: serving on http://"):
            self.proc.wait(10)
            raise RuntimeError(f"gateway did not start: {self.banner!r} {self.log()}")
        self.url = self.banner.split()[3]

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def search(self, **fields: Any) -> requests.Response:
        return requests.post(f"{self.url}/search/", data={"token": TOKEN, **fields}, timeout=30)

    def links(self, call: Call) -> list[dict[str, Any]]:
        answer = self.search(callid=call.callid, timestamp=call.start)
        assert answer.status_code == 200, answer.text
        files: list[dict[str, Any]] = answer.json()["files"]
        return files

    def stop(self) -> int:
        if self.proc.stdout is None or self.proc.stdout.closed:
            return self.proc.wait(15)  # stopped before
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        assert self.proc.stdout is not None
        self.tail = self.proc.stdout.read().decode()
        self.proc.stdout.close()
        self._log.close()
        return self.proc.returncode


def serve_args(archive: Archive, *extra: str, token: str | None = TOKEN) -> list[str]:
    args = ["--backend", "local", "--path", str(archive.root), "--layout", "freepbx"]
    args += ["--timezone", TZ, "--bind-to", "127.0.0.1:0"]
    if token is not None:
        args += ["--token", token]
    return [*args, *extra]


@pytest.fixture
def start_gateway(tmp_path: Path, archive: Archive) -> Iterator[Any]:
    """Start gateways with extra options; all are stopped at the end of the test."""
    started: list[Gateway] = []

    def start(
        *extra: str,
        token: str | None = TOKEN,
        env: dict[str, str] | None = None,
        root: Archive | None = None,
    ) -> Gateway:
        gw = Gateway(
            serve_args(root or archive, *extra, token=token),
            tmp_path / f"gateway-{len(started)}.log",
            env,
        )
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, archive: Archive) -> Iterator[Gateway]:
    """One gateway shared by a module's tests."""
    log = tmp_path_factory.mktemp("log") / "gateway.log"
    gateway = Gateway(serve_args(archive), log)
    yield gateway
    gateway.stop()


def read_demo(root: Path) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((root / "demo.json").read_text())
    return data


DEPLOYED_CADDYFILE = Path(__file__).parents[2] / "deploy" / "Caddyfile"
# The production Caddyfile, run on loopback: these fill its test-only placeholders.
CADDY_GLOBAL_OPTIONS = """admin off
skip_install_trust
auto_https disable_redirects
http_port {http_port}
https_port {https_port}
storage file_system {dir}/data"""
CADDY_TLS_SITE_OPTIONS = "bind 127.0.0.1\ntls internal"


class Caddy:
    """deploy/Caddyfile (or ``config``, a file made from it) run by a real Caddy on loopback in
    front of ``upstream`` (``host:port``); ``url`` is its site, on ``port`` (a free one by
    default): HTTPS with an internal certificate authority (``root_cert``), or plain HTTP with
    ``tls=False`` (the same file, without handshakes)."""

    def __init__(
        self,
        folder: Path,
        upstream: str,
        *,
        tls: bool = True,
        config: Path = DEPLOYED_CADDYFILE,
        port: int | None = None,
    ) -> None:
        port = port or free_port()
        self.url = f"{'https' if tls else 'http'}://localhost:{port}"
        self.root_cert = folder / "data" / "pki" / "authorities" / "local" / "root.crt"
        self.verify: str | bool = str(self.root_cert) if tls else True
        self.log_path = folder / "caddy.log"
        env = {
            **os.environ,
            "XDG_DATA_HOME": str(folder),
            "XDG_CONFIG_HOME": str(folder),
            "GATEWAY_DOMAIN": self.url,
            "GATEWAY_UPSTREAM": upstream,
            "CADDY_GLOBAL_OPTIONS": CADDY_GLOBAL_OPTIONS.format(
                http_port=free_port() if tls else port,
                https_port=port if tls else free_port(),
                dir=folder,
            ),
            "CADDY_SITE_OPTIONS": CADDY_TLS_SITE_OPTIONS if tls else "bind 127.0.0.1",
        }
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                ["caddy", "run", "--config", str(config), "--adapter", "caddyfile"],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(self._serving, 20, 0.1, what=lambda: f"caddy at {self.url}: {self.log()}")
        except (AssertionError, RuntimeError):
            self.stop()
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _serving(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"caddy exited: {self.log()}")
        if self.verify is not True and not self.root_cert.exists():
            return False
        try:
            return requests.get(f"{self.url}/healthz", verify=self.verify, timeout=2).ok
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def caddy_missing() -> str | None:
    """Why the Caddy tests cannot run here, or ``None``."""
    return None if shutil.which("caddy") else "caddy is not installed"


def upstream_of(gw: Gateway) -> str:
    """The ``host:port`` a gateway listens on."""
    return gw.url.split("://", 1)[1]


def systemd_problems(unit: Path) -> list[str]:
    """What ``systemd-analyze verify`` finds wrong with ``unit``, but for its user (which
    exists only once setup or the administrator has made it)."""
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    return [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if unit.name in line and "User=" not in line
    ]
