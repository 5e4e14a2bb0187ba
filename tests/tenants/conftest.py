"""A hosted-PBX archive (one folder per tenant) and ``gateway serve --tenants`` processes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from gateway.demo import DemoCall, write_demo
from tests.web.conftest import Gateway

ADMIN = "admin-token-5b1e0c7d"
SECRETS = {"tenant1.example": "s3cret-one-9f2a", "tenant2.example": "s3cret-two-4c7e"}
LINK_KEY = "tenants-link-key-" + "k" * 30
PATTERN = "%TE/archive/%YY/%MM/%DD"


@dataclass
class Hosted:
    root: Path
    calls: dict[str, list[DemoCall]]
    """Per tenant folder (including ``other.example``, which has no secret)."""

    def call(self, tenant: str, n_files: int = 1) -> DemoCall:
        return next(c for c in self.calls[tenant] if len(c.files) == n_files)

    def path(self, tenant: str, key: str) -> Path:
        return self.root / tenant / "archive" / key


def write_tenants(path: Path, secrets: dict[str, str]) -> Path:
    """Write atomically (a reload never sees half a file)."""
    data = [{"tenant": t, "secret": s, "note": f"customer {t}"} for t, s in secrets.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.chmod(0o600)
    os.replace(tmp, path)
    return path


@pytest.fixture(scope="session")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Hosted:
    root = tmp_path_factory.mktemp("hosted")
    calls = {}
    # Different days per tenant, so each tenant's call ids are its own...
    for n, tenant in enumerate(("tenant1.example", "tenant2.example", "other.example")):
        calls[tenant] = write_demo(
            root / tenant / "archive", end=date(2026, 3, 9 - n), days=1, tz=ZoneInfo("UTC")
        )
    # ...and one call id that every tenant has, each with its own file.
    for tenant in calls:
        shared = root / tenant / "archive" / "2026/03/05" / "q-shared-1772700000.555.wav"
        shared.parent.mkdir(parents=True, exist_ok=True)
        shared.write_bytes(tenant.encode() * 100)
    return Hosted(root, calls)


@pytest.fixture
def tenants_file(tmp_path: Path) -> Path:
    return write_tenants(tmp_path / "tenants.json", SECRETS)


def tenant_args(hosted: Hosted, tenants: Path, *extra: str, pattern: str = PATTERN) -> list[str]:
    return [
        "--path",
        f"file:{hosted.root}/{pattern}",
        "--timezone",
        "UTC",
        "--bind-to",
        "127.0.0.1:0",
        "--tenants",
        str(tenants),
        *extra,
    ]


@pytest.fixture
def start(tmp_path: Path, hosted: Hosted, tenants_file: Path) -> Iterator[Any]:
    started: list[Gateway] = []

    def go(*extra: str, tenants: Path | None = None, env: dict[str, str] | None = None) -> Gateway:
        args = tenant_args(hosted, tenants or tenants_file, *extra)
        gw = Gateway(args, tmp_path / f"gw-{len(started)}.log", env)
        started.append(gw)
        return gw

    yield go
    for gw in started:
        gw.stop()


@pytest.fixture(scope="module")
def mt(tmp_path_factory: pytest.TempPathFactory, hosted: Hosted) -> Iterator[Gateway]:
    """One multi-tenant gateway with an admin token and a known link key."""
    folder = tmp_path_factory.mktemp("mt")
    tenants = write_tenants(folder / "tenants.json", SECRETS)
    (folder / "keys").write_text(LINK_KEY + "\n")
    args = tenant_args(hosted, tenants, "--token", ADMIN, "--link-key-file", str(folder / "keys"))
    # these tests try many wrong secrets from one address on purpose: no throttling here
    # (tests/web/test_throttle.py covers it)
    gw = Gateway([*args, "--auth-failures", "0"], folder / "gateway.log")
    yield gw
    gw.stop()


def search(gw: Gateway, **fields: Any) -> requests.Response:
    return requests.post(f"{gw.url}/search/", data=fields, timeout=30)


def names(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return sorted(f["name"] for f in answer.json()["files"])
