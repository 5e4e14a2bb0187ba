"""A demo archive and real ``gateway serve`` processes on free loopback ports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from gateway.demo import write_demo
from tests.conftest import GATEWAY

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


@pytest.fixture(scope="session")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return make_archive(tmp_path_factory.mktemp("archive"))


class Gateway:
    """A running ``gateway serve``; ``url`` is where it listens."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [*GATEWAY, "serve", *args],
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
