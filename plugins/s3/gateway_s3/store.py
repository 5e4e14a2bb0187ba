"""The S3 store: recordings below a key prefix of a bucket, read through boto3.

- boto3 is imported when the first request is made, not when this module is: the gateway
  starts (and ``gateway plugins`` works) without it.
- One client per store, built lazily under a lock (boto3 *sessions* are not thread-safe;
  clients are). Short timeouts and few retries: a dead or silent endpoint gives
  ``Unavailable`` within seconds, never the SDK's default minute of retries.
- Listings page through ``list_objects_v2`` with ``Prefix`` (and ``Delimiter="/"`` when not
  recursive), so a narrowed search lists only the folders its window names. Entries carry the
  listing's size and LastModified: no request per object.
- Downloads stream ``GetObject`` with a ``Range`` header, chunk by chunk.
- Read-only: no method writes, copies or deletes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.errors import ConfigError, Forbidden, GatewayError, NotFound
from gateway.sourceurl import SourceURL
from gateway.storage import CHUNK_SIZE, ByteStream, Entry, NameFilter, check_key
from gateway_s3.settings import S3Settings
from gateway_s3.translate import translate

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_PAGE_SIZE = 1000


class S3Store:
    """Objects below ``settings.prefix`` in ``settings.bucket``. Thread-safe, read-only."""

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self.description = settings.description()
        self._root = settings.prefix
        self._lock = threading.Lock()
        self._client: S3Client | None = None
        self._presign_client: S3Client | None = None

    @classmethod
    def from_url(cls, url: SourceURL) -> S3Store:
        """The store factory: parse only, no network (see ``gateway.hookspecs``)."""
        return cls(S3Settings.from_url(url))

    def __repr__(self) -> str:
        return f"S3Store({self.description!r})"

    # -- client -------------------------------------------------------------------------

    def _get_client(self, *, presign: bool = False) -> S3Client:
        client = self._presign_client if presign else self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._make_client(self.settings.endpoint)
            if not presign:
                return self._client
            if self._presign_client is None:
                endpoint = self.settings.presign_endpoint
                self._presign_client = self._make_client(endpoint) if endpoint else self._client
            return self._presign_client

    def _make_client(self, endpoint: str | None) -> S3Client:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise ConfigError(
                f"{self.description}: S3 sources need boto3: pip install 'recording-gateway[s3]'"
            ) from None
        s = self.settings
        config = Config(
            connect_timeout=s.connect_timeout,
            read_timeout=s.read_timeout,
            retries={"max_attempts": s.max_attempts, "mode": "standard"},
            max_pool_connections=s.max_connections,
            s3={"addressing_style": s.effective_addressing},
            signature_version="s3v4",
            user_agent_extra="recording-gateway",
        )
        try:
            session = boto3.session.Session(
                profile_name=s.profile,
                aws_access_key_id=s.access_key_id,
                aws_secret_access_key=s.secret_access_key,
                aws_session_token=s.session_token,
            )
            return session.client(
                "s3",
                endpoint_url=endpoint,
                region_name=s.region,
                verify=s.verify,
                config=config,
            )
        except Exception as exc:
            raise translate(exc, self.description) from None

    def _call(self, what: str, func: Any, **kwargs: Any) -> Any:
        """Run one SDK call, translating its errors."""
        try:
            return func(**kwargs)
        except GatewayError:
            raise
        except Exception as exc:
            raise translate(exc, self.description, what) from None

    # -- keys ---------------------------------------------------------------------------

    def _object_key(self, key: str) -> str:
        check_key(key)
        return f"{self._root}/{key}" if self._root else key

    def _folder_prefix(self, prefix: str) -> str:
        parts = check_key(prefix, allow_root=True)
        joined = "/".join([self._root, *parts] if self._root else parts)
        return f"{joined}/" if joined else ""

    def _relative(self, object_key: str) -> str | None:
        """The store key of a listed object key, or ``None`` when it cannot be served safely."""
        if self._root:
            if not object_key.startswith(self._root + "/"):
                return None
            object_key = object_key[len(self._root) + 1 :]
        try:
            check_key(object_key)
        except Forbidden:
            return None  # "a//b", "../x", control characters: never offered to clients
        return object_key

    # -- the Store protocol -------------------------------------------------------------

    def check(self) -> None:
        client = self._get_client()
        try:
            client.head_bucket(Bucket=self.settings.bucket)
        except Exception as exc:
            error = translate(exc, self.description)
            if isinstance(error, NotFound | ConfigError):  # 404 / NoSuchBucket
                error = ConfigError(
                    f"{self.description}: the bucket {self.settings.bucket!r} does not exist"
                )
            raise error from None
        if self._root:  # S3 has no folders: a prefix exists while an object lies below it
            listed = self._call(
                "source prefix",
                client.list_objects_v2,
                Bucket=self.settings.bucket,
                Prefix=f"{self._root}/",
                MaxKeys=1,
            )
            if not listed.get("KeyCount") and not listed.get("Contents"):
                raise ConfigError(
                    f"{self.description}: the bucket holds nothing below the prefix "
                    f"{self._root + '/'!r}: the source folder does not exist"
                )

    def list(
        self, prefix: str, *, recursive: bool = False, match: NameFilter | None = None
    ) -> Iterator[Entry]:
        folder = self._folder_prefix(prefix)
        return self._list(prefix, folder, recursive, match)

    def _list(
        self, prefix: str, folder: str, recursive: bool, match: NameFilter | None
    ) -> Iterator[Entry]:
        client = self._get_client()
        kwargs: dict[str, Any] = {"Bucket": self.settings.bucket, "Prefix": folder}
        if not recursive:
            kwargs["Delimiter"] = "/"
        pages = client.get_paginator("list_objects_v2").paginate(
            **kwargs, PaginationConfig={"PageSize": _PAGE_SIZE}
        )
        seen_any = False
        iterator = iter(pages)
        while True:
            try:
                page = next(iterator)
            except StopIteration:
                break
            except Exception as exc:
                raise translate(exc, self.description, prefix) from None
            for common in page.get("CommonPrefixes", ()):
                seen_any = True
                key = self._relative(common.get("Prefix", "").rstrip("/"))
                if key is not None:
                    yield Entry(key, 0, _EPOCH, is_dir=True)
            for obj in page.get("Contents", ()):
                seen_any = True
                object_key = obj.get("Key", "")
                if object_key.endswith("/"):
                    continue  # a folder marker, not a file
                key = self._relative(object_key)
                if key is None:
                    continue
                if match is not None and not match(key.rsplit("/", 1)[-1]):
                    continue
                yield Entry(key, int(obj.get("Size", 0)), _utc(obj.get("LastModified")))
        if not seen_any and folder:
            raise NotFound(f"no folder {prefix!r}")

    def stat(self, key: str) -> Entry:
        """HEAD the object: size, time and the ETag to pass through to HTTP clients."""
        object_key = self._object_key(key)
        client = self._get_client()
        head = self._call(key, client.head_object, Bucket=self.settings.bucket, Key=object_key)
        if object_key.endswith("/") or head.get("ContentType") == "httpd/unix-directory":
            raise NotFound(f"no file {key!r}")
        size, mtime = int(head.get("ContentLength", 0)), _utc(head.get("LastModified"))
        return Entry(key, size, mtime, etag=head.get("ETag"))

    def open(self, key: str, start: int = 0, end: int | None = None) -> ByteStream:
        """One ``GetObject`` with a ``Range``, streamed; closing the stream, read to the end or
        not, closes the response body (and with it its connection)."""
        object_key = self._object_key(key)
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range {start}-{end}")
        if end is not None and end == start:
            self.stat(key)  # nothing to read, but a missing key is still NotFound
            return ObjectChunks(None, 0, 0)
        client = self._get_client()
        kwargs: dict[str, Any] = {"Bucket": self.settings.bucket, "Key": object_key}
        if start or end is not None:
            last = "" if end is None else str(end - 1)
            kwargs["Range"] = f"bytes={start}-{last}"
        try:
            response = client.get_object(**kwargs)
        except Exception as exc:
            from botocore.exceptions import ClientError

            if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in (
                "InvalidRange",
                "416",
            ):
                self.stat(key)  # the range starts at or after the end: nothing to send
                return ObjectChunks(None, 0, 0)
            raise translate(exc, self.description, key) from None
        body: StreamingBody = response["Body"]
        # A server that ignores Range sends the whole object with a 200: skip and cut here.
        skip = start if "Range" in kwargs and not response.get("ContentRange") else 0
        remaining = None if end is None else end - start
        return ObjectChunks(body, skip, remaining, description=self.description)

    def presigned_url(self, key: str, expires_in: int) -> str:
        """A GET URL for ``key``, signed for ``expires_in`` seconds; the server honours Range."""
        object_key = self._object_key(key)
        if expires_in <= 0:
            raise ValueError("expires_in must be positive")
        client = self._get_client(presign=True)
        url: str = self._call(
            key,
            client.generate_presigned_url,
            ClientMethod="get_object",
            Params={"Bucket": self.settings.bucket, "Key": object_key},
            ExpiresIn=expires_in,
        )
        return url

    def close(self) -> None:
        with self._lock:
            clients = {id(c): c for c in (self._client, self._presign_client) if c is not None}
            self._client = self._presign_client = None
        for client in clients.values():
            client.close()


class ObjectChunks:
    """The bytes of one GetObject response, chunk by chunk; closes the body when done."""

    def __init__(
        self,
        body: StreamingBody | None,
        skip: int,
        remaining: int | None,
        *,
        description: str = "",
    ) -> None:
        self._body = body
        self._skip = skip
        self._remaining = remaining
        self._description = description

    def __iter__(self) -> ObjectChunks:
        return self

    def __next__(self) -> bytes:
        while True:
            if self._body is None or self._remaining == 0:
                self.close()
                raise StopIteration
            want = CHUNK_SIZE
            if self._remaining is not None and not self._skip:
                want = min(CHUNK_SIZE, self._remaining)
            try:
                chunk = self._body.read(want)
            except Exception as exc:
                self.close()
                raise translate(exc, self._description) from None
            if not chunk:
                self.close()
                raise StopIteration
            if self._skip:
                dropped = min(self._skip, len(chunk))
                self._skip -= dropped
                chunk = chunk[dropped:]
                if not chunk:
                    continue
            if self._remaining is not None:
                chunk = chunk[: self._remaining]
                self._remaining -= len(chunk)
            return chunk

    def close(self) -> None:
        body, self._body = self._body, None
        if body is not None:
            body.close()


def _utc(value: object) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return _EPOCH
