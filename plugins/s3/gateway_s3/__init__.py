"""S3 store: recordings in a bucket of AWS S3 or any S3-compatible store (MinIO, Ceph, SeaweedFS).

``--path 's3://recordings/pbx1?endpoint=http://127.0.0.1:8333&region=us-east-1'``; see
docs/s3.md. Registered through the ``gateway.plugins`` entry point like any third-party store.
Importing this package does not import boto3: that happens when an ``s3:`` source is first
used, so the gateway runs without boto3 installed as long as no such source is configured.
Every command imports this package to learn its scheme, so it loads nothing else either: the
settings parser (``S3Settings``, still importable from here) comes with the first ``s3:`` source.

Besides the ``Store`` protocol, ``S3Store`` offers ``presigned_url`` (the ``Presigner``
capability); the ``Entry`` that ``stat`` returns carries the object's ETag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gateway.hookspecs import StoreType, hookimpl
from gateway.sourceurl import SourceURL
from gateway.storage import Store

if TYPE_CHECKING:
    from gateway_s3.settings import S3Settings

__all__ = ["S3Settings", "gateway_store_types", "make_store"]


def __getattr__(name: str) -> Any:
    """``gateway_s3.S3Settings``, imported when first asked for (PEP 562)."""
    if name == "S3Settings":
        from gateway_s3.settings import S3Settings

        return S3Settings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_store(url: SourceURL) -> Store:
    """The store factory: reads the URL and its options; touches neither boto3 nor the network."""
    from gateway_s3.settings import S3Settings
    from gateway_s3.store import S3Store

    return S3Store(S3Settings.from_url(url))


@hookimpl
def gateway_store_types() -> Sequence[StoreType]:
    return [
        StoreType(
            scheme="s3",
            factory=make_store,
            description="an S3 bucket (AWS, MinIO, Ceph, SeaweedFS): "
            "s3://BUCKET/PREFIX?endpoint=URL&region=NAME&path_style=1",
        )
    ]
