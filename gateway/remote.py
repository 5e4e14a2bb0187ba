"""Remote sources: another gateway, searched over HTTP (federation).

``--path 'file:/var/spool/asterisk/monitor,gateway+https://milan.example.com?site=milan'``
makes the gateway at Milan one more source. A ``RemoteSource`` keeps the source contract
(``gateway.source``) but has no store: the peer does its own searching, with its own layout and
time zone, and answers with its own signed links, which this gateway's links open as a
``PeerFile`` (redirected to, or relayed with ``--proxy-peers``). Stores are byte-level and
local; a remote source is search-level.

Nothing a peer says is trusted before it is checked: the answer's size is bounded, its JSON
shape is validated field by field, and every link must be on the peer's own URL (same scheme,
host, port and path prefix). Redirects are never followed. Each search carries an
``X-Gateway-Via`` header listing the gateways it passed through, so a loop (A federates B
federates A) is refused at its second visit, and a chain is cut after ``MAX_HOPS`` gateways.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import urllib3

from gateway.errors import SiteUnavailable, UsageError
from gateway.query import Query
from gateway.recordings import Elsewhere, Recording, audio_format
from gateway.secret_files import read_secret_file
from gateway.source import Found, SiteError
from gateway.storage import ByteStream
from gateway.via import DEFAULT_PEER_TIMEOUT, SCHEMES, VIA_HEADER, check_site_name

TOKEN_ENV_PREFIX = "GATEWAY_PEER_TOKEN_"  # noqa: S105 (a variable name, not a secret)
MAX_ANSWER = 1024 * 1024
"""Largest search answer accepted from a peer, in bytes."""
MAX_FILES = 1000
MAX_NESTED_ERRORS = 20
_READ_SIZE = 64 * 1024
_LINK_PATH = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=:@%/-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class PeerError(SiteUnavailable):
    """A peer gateway could not be asked, or answered something unusable. Never holds a token."""

    http_status = 502


@dataclass(frozen=True)
class PeerURL:
    """Where a peer gateway is: its links must be on exactly this scheme, host, port, prefix."""

    scheme: str
    host: str
    port: int
    prefix: str
    """``""`` or ``/path`` without a trailing slash."""

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.prefix}"

    def path_of(self, url: str) -> str | None:
        """The link's path below the prefix (no leading ``/``) if ``url`` is on this peer."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            return None
        if (
            parts.scheme.lower() != self.scheme
            or (parts.hostname or "").lower() != self.host
            or (port if port is not None else {"http": 80, "https": 443}[self.scheme]) != self.port
            or parts.username is not None
            or parts.password is not None
            or parts.query
            or parts.fragment
            or "?" in url
            or "#" in url
            or not parts.path.startswith(self.prefix + "/")
        ):
            return None
        rest = parts.path[len(self.prefix) + 1 :]
        segments = rest.split("/")
        if not _LINK_PATH.match(rest) or any(s in ("", ".", "..") for s in segments):
            return None
        if any(s.lower() in ("%2e", "%2e%2e", ".%2e", "%2e.") for s in segments):
            return None
        return rest


def parse_peer(item: str, environ: Mapping[str, str] | None = None) -> tuple[PeerURL, str, str]:
    """``gateway+https://host[:port][/prefix][?site=NAME&token_file=FILE]`` -> (url, site,
    token). The token comes from ``token_file`` or ``GATEWAY_PEER_TOKEN_<SITE>``, never from
    the URL itself (it is visible in ``ps`` and in logs)."""
    scheme, _, rest = item.partition(":")
    http_scheme = SCHEMES[scheme.lower()]
    try:
        parts = urlsplit(f"{http_scheme}:{rest}")
        port = parts.port
    except ValueError:
        raise UsageError(f"cannot read the peer gateway URL {_safe(item)!r}") from None
    if parts.username is not None or parts.password is not None:
        raise UsageError(
            "a peer gateway URL must not hold credentials: give the site's token with "
            f"token_file= or {TOKEN_ENV_PREFIX}<SITE>"
        )
    if not parts.hostname or not parts.netloc or parts.fragment:
        raise UsageError(f"a peer gateway URL is {scheme}://HOST[:PORT][/PREFIX], not {item!r}")
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in ("site", "token_file"):
            raise UsageError(
                f"unknown option {key!r} in a peer gateway URL (known: site, token_file; "
                f"the token itself goes in token_file= or {TOKEN_ENV_PREFIX}<SITE>)"
            )
        options[key] = value
    prefix = parts.path.rstrip("/")
    if any(s in (".", "..") for s in prefix.split("/")) or "%" in prefix:
        raise UsageError(f"the path of the peer gateway URL {item!r} is not a plain prefix")
    host = parts.hostname.lower()
    peer = PeerURL(http_scheme, host, port or {"http": 80, "https": 443}[http_scheme], prefix)
    site = check_site_name(options.get("site") or peer.netloc.strip("[]"))
    token = _peer_token(site, options.get("token_file"), os.environ if environ is None else environ)
    return peer, site, token


def token_env_name(site: str) -> str:
    return TOKEN_ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", site).upper()


def _peer_token(site: str, token_file: str | None, environ: Mapping[str, str]) -> str:
    if token_file:
        return read_secret_file(token_file, f"token file of site {site}")
    token = environ.get(token_env_name(site), "").strip()
    if not token:
        raise UsageError(
            f"no token for site {site}: set {token_env_name(site)} or add "
            "token_file=FILE to its URL"
        )
    return token


def _safe(item: str) -> str:
    """A URL as it may be shown: without a user-info part."""
    return re.sub(r"//[^/@]*@", "//", item)


class RemoteSource:
    """Another gateway, searched over HTTP. Thread-safe (urllib3's pool is)."""

    federated = True

    def __init__(
        self,
        id: str,
        peer: PeerURL,
        site: str,
        token: str,
        *,
        timeout: float = DEFAULT_PEER_TIMEOUT,
    ) -> None:
        self.id = id
        self.peer = peer
        self.site = site
        self.timeout = timeout
        self._token = token
        # retries=False: no retries and no redirects followed (a 3xx is returned as it is).
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=16, block=False, retries=False)

    @classmethod
    def from_url(
        cls, item: str, *, timeout: float = DEFAULT_PEER_TIMEOUT, id: str | None = None
    ) -> RemoteSource:
        peer, site, token = parse_peer(item)
        scheme = item.partition(":")[0].lower()
        return cls(
            id or f"{scheme}://{peer.netloc}{peer.prefix}", peer, site, token, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"RemoteSource({self.id!r}, site={self.site!r})"

    @property
    def label(self) -> str:
        return f"site {self.site} at {self.peer.base}"

    def check(self) -> None:
        """Ask the peer's ``/healthz`` (without the token): ``PeerError`` when it cannot be
        reached or does not answer ``200`` within ``timeout`` seconds in all, name lookup
        included (the probe runs on a thread of its own, left behind if it hangs). Searches
        never depend on it: a peer down now is an error entry of each search until it is back."""
        outcome: list[PeerError | None] = []
        probe = threading.Thread(
            target=lambda: outcome.append(self._probe()), name="gateway-peer-check", daemon=True
        )
        probe.start()
        probe.join(self.timeout)
        if not outcome:
            raise PeerError(self.site, f"no answer within {self.timeout:g}s")
        if outcome[0] is not None:
            raise outcome[0]

    def _probe(self) -> PeerError | None:
        try:
            resp = self._pool.request(
                "GET",
                f"{self.peer.base}/healthz",
                headers={"Accept": "application/json", "Accept-Encoding": "identity"},
                timeout=urllib3.Timeout(total=self.timeout),
                preload_content=False,
                redirect=False,
                retries=False,
            )
            data = b"" if resp.status == 200 else resp.read(4096, decode_content=False)
            resp.close()
        except urllib3.exceptions.NewConnectionError as exc:  # (a ConnectTimeoutError too)
            return PeerError(self.site, f"cannot be reached ({_reason(exc)})")
        except urllib3.exceptions.TimeoutError:
            return PeerError(self.site, f"no answer within {self.timeout:g}s")
        except urllib3.exceptions.HTTPError as exc:
            return PeerError(self.site, f"cannot be reached ({_reason(exc)})")
        return (
            None if resp.status == 200 else PeerError(self.site, _status_reason(resp.status, data))
        )

    def file(self, key: str, *, tenant: str | None) -> PeerFile:
        return PeerFile(self, key)

    def duration(self, recording: Recording) -> float | None:
        return recording.duration

    def separates_tenants(self) -> bool:
        return False

    def inspect(self, query: Query, days: Sequence[date]) -> Iterator[str]:
        return iter(())

    def search(
        self, query: Query, days: Sequence[date] = (), *, via: Sequence[str], deadline: float
    ) -> Found:
        """Ask the peer, within ``deadline`` (a ``time.monotonic()`` value); its own days."""
        fields: dict[str, str] = {"callid": query.callid}
        if query.start is not None:
            fields["timestamp"] = query.start.isoformat()
        for name in ("tenant", "queue", "agent", "server"):
            value = getattr(query, name)
            if value is not None:
                fields[name] = value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise PeerError(self.site, "no time left to ask it")
        try:
            resp = self._pool.request(
                "POST",
                f"{self.peer.base}/search/",
                body=json.dumps(fields).encode(),
                headers={
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                    "Accept-Encoding": "identity",
                    "Authorization": f"Bearer {self._token}",
                    VIA_HEADER: ",".join(via),
                },
                timeout=urllib3.Timeout(connect=remaining, read=remaining),
                preload_content=False,
                redirect=False,
                retries=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:  # (a ConnectTimeoutError too)
            raise PeerError(self.site, f"cannot be reached ({_reason(exc)})") from None
        except urllib3.exceptions.TimeoutError:
            raise PeerError(self.site, f"no answer within {self.timeout:g}s") from None
        except urllib3.exceptions.HTTPError as exc:
            raise PeerError(self.site, f"cannot be reached ({_reason(exc)})") from None
        try:
            data = self._read(resp, deadline)
        except BaseException:
            resp.close()
            raise
        resp.release_conn()
        if resp.status != 200:
            raise PeerError(self.site, _status_reason(resp.status, data))
        return parse_answer(data, self.peer, self.site, self.id)

    def _read(self, resp: urllib3.BaseHTTPResponse, deadline: float) -> bytes:
        encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise PeerError(self.site, f"answered with an encoding not asked for ({encoding[:20]})")
        length = resp.headers.get("Content-Length")
        if length is not None and length.strip().isdigit() and int(length) > MAX_ANSWER:
            raise PeerError(self.site, f"answer larger than {MAX_ANSWER} bytes")
        chunks: list[bytes] = []
        total = 0
        try:
            while True:
                if time.monotonic() > deadline:
                    raise PeerError(self.site, f"no complete answer within {self.timeout:g}s")
                chunk = resp.read(_READ_SIZE, decode_content=False)
                if not chunk:
                    break
                total += len(chunk)
                if total > MAX_ANSWER:
                    raise PeerError(self.site, f"answer larger than {MAX_ANSWER} bytes")
                chunks.append(chunk)
        except urllib3.exceptions.TimeoutError:
            raise PeerError(self.site, f"no complete answer within {self.timeout:g}s") from None
        except urllib3.exceptions.HTTPError as exc:
            raise PeerError(self.site, f"answer cut short ({_reason(exc)})") from None
        return b"".join(chunks)

    def fetch(
        self, path: str, method: str, headers: Mapping[str, str], read_timeout: float
    ) -> urllib3.BaseHTTPResponse:
        """Open ``path`` (a link path from a checked answer) on the peer, unread, unredirected."""
        try:
            return self._pool.request(
                method,
                f"{self.peer.base}/{path}",
                headers={**headers, "Accept-Encoding": "identity"},
                timeout=urllib3.Timeout(connect=self.timeout, read=read_timeout),
                preload_content=False,
                decode_content=False,
                redirect=False,
                retries=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:
            raise PeerError(self.site, f"cannot be reached ({_reason(exc)})") from None
        except urllib3.exceptions.TimeoutError:
            raise PeerError(self.site, f"no answer within {read_timeout:g}s") from None
        except urllib3.exceptions.HTTPError as exc:
            raise PeerError(self.site, f"cannot be reached ({_reason(exc)})") from None

    def download(self, path: str, read_timeout: float = 30.0) -> ByteStream:
        """The whole file behind a link path of this peer, in chunks (``gateway get``)."""
        resp = self.fetch(path, "GET", {}, read_timeout)
        if resp.status != 200:
            data = resp.read(4096, decode_content=False)
            resp.close()
            raise PeerError(self.site, _status_reason(resp.status, data))
        return stream_body(resp, self.site)

    def close(self) -> None:
        self._pool.clear()


@dataclass(frozen=True)
class PeerFile:
    """What a link of this gateway to a file at another site opens: the site's own link path."""

    peer: RemoteSource
    path: str
    """The site's link path, below its URL (from a checked answer)."""

    @property
    def url(self) -> str:
        return f"{self.peer.peer.base}/{self.path}"

    def open(self) -> ByteStream:
        return self.peer.download(self.path)


def stream_body(resp: urllib3.BaseHTTPResponse, site: str) -> Generator[bytes, None, None]:
    """A peer's response body in chunks; the connection is released (or dropped, when the
    consumer stops early) when the generator ends or is closed."""
    complete = False
    try:
        while True:
            try:
                chunk = resp.read(_READ_SIZE, decode_content=False)
            except urllib3.exceptions.HTTPError as exc:
                raise PeerError(site, f"download cut short ({_reason(exc)})") from None
            if not chunk:
                complete = True
                return
            yield chunk
    finally:
        if complete:
            resp.release_conn()
        else:
            resp.close()


def _reason(exc: BaseException) -> str:
    """A short reason without URLs (which are harmless here, but long)."""
    while isinstance(exc, urllib3.exceptions.HTTPError) and exc.__context__ is not None:
        if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
            exc = exc.reason
            continue
        break
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        text = str(exc).rsplit(":", 1)[-1].strip() or "connection failed"
        return text
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, urllib3.exceptions.ProtocolError):
        return "connection broken"
    return type(exc).__name__


def _status_reason(status: int, data: bytes) -> str:
    if 300 <= status < 400:
        return f"answered with a redirect (HTTP {status}), which is not followed"
    if status == 401:
        return "refused the token (HTTP 401)"
    reason = f"answered HTTP {status}"
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return reason
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        reason += ": " + clean_text(body["error"])
    return reason


def clean_text(text: str, limit: int = 300) -> str:
    """A peer's message as it may be shown: no control characters, bounded length."""
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class _Invalid(Exception):
    pass


def parse_answer(data: bytes, peer: PeerURL, site: str, source_id: str) -> Found:
    """Check a peer's search answer and turn it into recordings; ``PeerError`` if unusable."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise PeerError(site, "answered something that is not JSON") from None
    try:
        return _parse(body, peer, site, source_id)
    except _Invalid as exc:
        raise PeerError(site, f"invalid answer: {exc}") from None


def _parse(body: Any, peer: PeerURL, site: str, source_id: str) -> Found:
    if not isinstance(body, dict):
        raise _Invalid("not a JSON object")
    if body.get("status") != "OK":
        raise _Invalid("status is not OK")
    files = body.get("files")
    if not isinstance(files, list):
        raise _Invalid("no files list")
    if len(files) > MAX_FILES:
        raise _Invalid(f"more than {MAX_FILES} files")
    recordings = [_recording(item, peer, site, source_id) for item in files]
    errors: list[SiteError] = []
    nested = body.get("errors", [])
    if not isinstance(nested, list):
        raise _Invalid("errors is not a list")
    for item in nested[:MAX_NESTED_ERRORS]:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("error"), str)
            or not isinstance(item.get("site"), str | None)
        ):
            raise _Invalid("malformed errors entry")
        inner = clean_text(item["site"], 64) if item["site"] else "local"
        errors.append(SiteError(f"{site}/{inner}", clean_text(item["error"])))
    return Found(recordings, errors)


def _recording(item: Any, peer: PeerURL, site: str, source_id: str) -> Recording:
    if not isinstance(item, dict):
        raise _Invalid("a file is not an object")
    name, url, size, empty = item.get("name"), item.get("url"), item.get("size"), item.get("empty")
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= 255
        or "/" in name
        or "\\" in name
        or _CONTROL.search(name)
    ):
        raise _Invalid("a file name is missing or unsafe")
    fmt = audio_format(name)
    if fmt is None:
        raise _Invalid(f"{clean_text(name, 80)!r} is not an audio file")
    if not isinstance(url, str) or len(url) > 4096:
        raise _Invalid("a file has no url")
    path = peer.path_of(url)
    if path is None:
        raise _Invalid(f"a link is not on the site's URL {peer.base}/")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _Invalid("a file size is not a whole number")
    if not isinstance(empty, bool):
        raise _Invalid("empty is not true or false")
    duration = item.get("duration")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0
    ):
        raise _Invalid("a duration is not a number of seconds")
    return Recording(
        source=source_id,
        key=path,
        size=size,
        mtime=_time(item.get("mtime"), "mtime"),
        format=fmt.format,
        mime=fmt.mime,
        empty=empty,
        elsewhere=Elsewhere(site, url, _time(item.get("expires"), "expires"), name),
        duration=None if duration is None else float(duration),
    )


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise _Invalid(f"{what} is missing")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"{what} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise _Invalid(f"{what} has no time zone")
    return moment
