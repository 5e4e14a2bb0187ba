"""Fixtures for the S3 store tests: a real S3 server, buckets to fill, stores to test.

By default a SeaweedFS ``weed mini`` is started on loopback for the session (see server.py).
To run the same tests against another S3 endpoint instead, set ``GATEWAY_TEST_S3_ENDPOINT``,
``GATEWAY_TEST_S3_ACCESS_KEY`` and ``GATEWAY_TEST_S3_SECRET_KEY`` (and optionally
``GATEWAY_TEST_S3_REGION``); the tests create and delete their own uniquely named buckets there,
and the tests that stop and restart the server are skipped.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import pytest

from gateway.sourceurl import SourceURL
from gateway_s3.settings import S3Settings
from gateway_s3.store import S3Store
from tests.s3.server import Credentials, SeaweedServer, admin_client


@dataclass
class S3Env:
    endpoint: str
    credentials: Credentials
    region: str
    server: SeaweedServer | None
    """The server the suite started (``None`` for an external endpoint)."""

    def url(self, bucket: str, prefix: str = "", **options: str) -> str:
        """An ``s3://`` source URL for this endpoint, with the path after the bucket."""
        query = {"endpoint": self.endpoint, "region": self.region, "path_style": "1", **options}
        location = f"s3://{bucket}" + (f"/{prefix}" if prefix else "")
        return location + "?" + "&".join(f"{k}={v}" for k, v in query.items())

    def store(
        self, bucket: str, prefix: str = "", *, secret: str | None = None, **options: str
    ) -> S3Store:
        """A store with this endpoint's credentials given explicitly (the Python API way)."""
        settings = S3Settings.from_url(SourceURL.parse(self.url(bucket, prefix, **options)))
        settings = replace(
            settings,
            access_key_id=self.credentials.access_key,
            secret_access_key=secret or self.credentials.secret_key,
        )
        return S3Store(settings)

    def environ(self) -> dict[str, str]:
        """Environment for a CLI subprocess: credentials the boto3 way, no instance metadata."""
        env = dict(os.environ)
        env.update(
            AWS_ACCESS_KEY_ID=self.credentials.access_key,
            AWS_SECRET_ACCESS_KEY=self.credentials.secret_key,
            AWS_EC2_METADATA_DISABLED="true",
        )
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        return env


@pytest.fixture(scope="session")
def s3env() -> Iterator[S3Env]:
    external = os.environ.get("GATEWAY_TEST_S3_ENDPOINT")
    if external:
        credentials = Credentials(
            os.environ["GATEWAY_TEST_S3_ACCESS_KEY"], os.environ["GATEWAY_TEST_S3_SECRET_KEY"]
        )
        region = os.environ.get("GATEWAY_TEST_S3_REGION", "us-east-1")
        yield S3Env(external.rstrip("/"), credentials, region, None)
        return
    server = SeaweedServer()
    server.start()
    try:
        yield S3Env(server.endpoint, server.credentials, "us-east-1", server)
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def admin(s3env: S3Env) -> Any:
    """A boto3 client that may write: only the tests use it, to fill buckets."""
    client = admin_client(s3env.endpoint, s3env.credentials, s3env.region)
    yield client
    client.close()


BucketFactory = Callable[[Mapping[str, bytes]], str]


@pytest.fixture(scope="session")
def make_bucket(admin: Any) -> Iterator[BucketFactory]:
    """Create a uniquely named bucket holding the given objects; deleted at the end."""
    created: list[str] = []

    def make(objects: Mapping[str, bytes]) -> str:
        name = f"gw-test-{secrets.token_hex(6)}"
        admin.create_bucket(Bucket=name)
        created.append(name)
        put_objects(admin, name, objects.items())
        return name

    yield make
    for name in created:
        delete_bucket(admin, name)


def put_objects(
    admin: Any, bucket: str, objects: Iterable[tuple[str, bytes]], workers: int = 32
) -> None:
    """Upload objects concurrently (boto3 clients are thread-safe)."""
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(admin.put_object, Bucket=bucket, Key=k, Body=v) for k, v in objects]
        for future in futures:
            future.result()


def delete_bucket(admin: Any, bucket: str) -> None:
    try:
        for page in admin.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            keys = [o["Key"] for o in page.get("Contents", ())]
            plain = [{"Key": k} for k in keys if k.isprintable()]
            if plain:
                admin.delete_objects(Bucket=bucket, Delete={"Objects": plain, "Quiet": True})
            for key in keys:
                if not key.isprintable():  # cannot be written in DeleteObjects' XML body
                    admin.delete_object(Bucket=bucket, Key=key)
        admin.delete_bucket(Bucket=bucket)
    except Exception as exc:  # best effort: the server may already be gone
        warnings.warn(f"could not delete test bucket {bucket}: {exc}", stacklevel=1)
