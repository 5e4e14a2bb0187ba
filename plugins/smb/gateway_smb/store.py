"""The SMB store: smbprotocol's ``smbclient`` API behind the gateway's ``Store`` contract.

Imported only when an ``smb:`` source is built (it imports smbprotocol at the top).

Connections. The store keeps its own small pool of SMB connections (``connections``, default
4), each an smbclient connection cache holding one TCP connection and one logged-on session,
so several stores never share, or log off, each other's sessions. A request takes the least
busy connection, opening another while all are busy and the pool is not full. Every smbclient
call passes the port and the credentials explicitly (smbprotocol forgets a non-default port
and, on reconnecting, the credentials).

Resilience. A request that fails because its connection or session is gone (server restarted,
session expired or deleted, socket reset) is sent once more on a fresh connection; a download
that loses its connection midway reopens the file and goes on from the next byte. Connecting
and logging on are bounded by ``timeout`` (default 5 s): a server that is down or silent gives
``Unavailable`` within it. A server that stops answering an established session is given up
after ``io_timeout`` (default ``max(30, 6 x timeout)``) seconds per request by a watchdog that
closes the connection.

Reads. ``open`` opens the file before returning (so a missing file or refused logon is raised
by ``open`` itself) and returns an iterator that keeps a few reads in flight and yields
``CHUNK_SIZE`` pieces; closing it closes the remote file. It never hands out smbclient's file
object.

smbprotocol below its documented API. Besides ``smbclient``'s functions and the public methods
of ``Connection`` and ``Open`` (``send``, ``receive``, ``read(send=False)``,
``query_directory(send=False)``), this module relies on undocumented details: the key format
of an smbclient connection cache (``host:port``, from ``smbclient._pool``), the ``fd``
attribute of the raw file ``smbclient.open_file(buffering=0)`` returns (``smbclient._io``),
``Connection.transport.connected`` and the credit window ``Connection.sequence_window``. That
is why ``pyproject.toml`` caps smbprotocol below its next minor version.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import smbclient
from smbprotocol.exceptions import (
    BadNetworkName,
    NoMoreFiles,
    NoSuchFile,
    SMBAuthenticationError,
    SMBConnectionClosed,
    SMBException,
    SMBOSError,
    SMBResponseException,
)
from smbprotocol.file_info import FileAttributes, FileInformationClass
from smbprotocol.open import QueryDirectoryFlags, SMB2QueryDirectoryResponse

from gateway.errors import ConfigError, Forbidden, GatewayError, NotFound, Unavailable
from gateway.storage import CHUNK_SIZE, ByteStream, Entry, NameFilter, join_key
from gateway_smb.config import SmbLocation, smb_segments

log = logging.getLogger("gateway_smb")
T = TypeVar("T")
_Row = tuple[str, int, int, datetime]
_Rows = list[_Row]
"""A directory entry as listed: name, attributes, size, modification time."""

READ_SIZE = 1024 * 1024
"""Bytes asked for in one SMB READ request (yielded in ``CHUNK_SIZE`` pieces). Large reads
matter: per request, smbprotocol costs far more than the bytes (see bench/smb.py)."""
READ_AHEAD = 4
"""READ requests kept in flight by a download: at most READ_SIZE x READ_AHEAD bytes buffered."""
_PAYLOAD = 65536  # one SMB credit covers this many bytes
_CREDIT_RESERVE = 8  # credits downloads leave free for listings, opens and closes

_SHARE_ACCESS = "rwd"  # never lock recorders out of a file they are still writing
_DIR = FileAttributes.FILE_ATTRIBUTE_DIRECTORY
_REPARSE = FileAttributes.FILE_ATTRIBUTE_REPARSE_POINT

# NTSTATUS values that mean "this connection or session is gone, a new one will do".
_STALE_STATUS = frozenset(
    {
        0xC000035C,  # STATUS_NETWORK_SESSION_EXPIRED
        0xC0000203,  # STATUS_USER_SESSION_DELETED
        0xC00000C9,  # STATUS_NETWORK_NAME_DELETED
        0xC000020C,  # STATUS_CONNECTION_DISCONNECTED
        0xC000020D,  # STATUS_CONNECTION_RESET
        0xC0000128,  # STATUS_FILE_CLOSED (handle lost with its session)
    }
)
_LOGON_STATUS = frozenset(
    {
        0xC000006D,  # STATUS_LOGON_FAILURE
        0xC000006A,  # STATUS_WRONG_PASSWORD
        0xC0000071,  # STATUS_PASSWORD_EXPIRED
        0xC0000072,  # STATUS_ACCOUNT_DISABLED
        0xC0000234,  # STATUS_ACCOUNT_LOCKED_OUT
        0xC000006E,  # STATUS_ACCOUNT_RESTRICTION
        0xC0000224,  # STATUS_PASSWORD_MUST_CHANGE
    }
)


class _NoShare(Unavailable):
    """The server has no such share (a configuration error when ``check`` finds it)."""


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, SMBOSError):
        return int(exc.ntstatus)
    if isinstance(exc, SMBResponseException):
        return int(exc.status)
    return None


def _is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection or session is gone (not: the request was refused)."""
    if _status(exc) in _STALE_STATUS:
        return True
    if isinstance(exc, SMBConnectionClosed | ConnectionError | TimeoutError | EOFError):
        return True
    if isinstance(exc, SMBOSError):
        return False
    if isinstance(exc, OSError):
        return True
    text = str(exc)
    return isinstance(exc, SMBException) and (
        "Connection timeout" in text or "socket was closed" in text
    )


class _Slot:
    """One pooled connection: an smbclient connection cache of its own."""

    def __init__(self, key: str) -> None:
        self.cache: dict[str, Any] = {}
        self.key = key
        self.users = 0
        self.lock = threading.Lock()
        self.send_lock = threading.Lock()
        """Held while a download checks the credit window and sends a READ."""

    def connection(self) -> Any:
        return self.cache.get(self.key)

    def alive(self) -> bool:
        conn = self.connection()
        return conn is not None and conn.transport is not None and conn.transport.connected

    def drop(self) -> None:
        """Close the connection without logging off (it is usually dead already)."""
        conn = self.cache.pop(self.key, None)
        if conn is not None:
            try:
                conn.disconnect(close=False)
            except Exception as exc:  # closing a dead socket may fail in many ways
                log.debug("closing a dropped SMB connection failed: %r", exc)


class _Pool:
    """Up to ``size`` connections; a request takes the least busy one."""

    def __init__(self, key: str, size: int) -> None:
        self._key = key
        self._size = max(1, size)
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()

    def acquire(self) -> _Slot:
        with self._lock:
            slot = min(self._slots, key=lambda s: s.users, default=None)
            if slot is None or (slot.users > 0 and len(self._slots) < self._size):
                slot = _Slot(self._key)
                self._slots.append(slot)
            slot.users += 1
            return slot

    def hold(self, slot: _Slot) -> None:
        """Count one more user of ``slot`` (an open file keeps its connection)."""
        with self._lock:
            slot.users += 1

    def release(self, slot: _Slot) -> None:
        with self._lock:
            slot.users -= 1

    def close(self) -> None:
        with self._lock:
            slots, self._slots = self._slots, []
        for slot in slots:
            conn = slot.cache.pop(slot.key, None)
            if conn is None:
                continue
            try:
                conn.disconnect(close=True, timeout=2)
            except Exception:
                slot.cache[slot.key] = conn
                slot.drop()


class _Watchdog:
    """Closes the connection of a request that outlives its deadline, so it fails, not hangs."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._active: dict[int, _Slot] = {}
        self._fired: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    @contextmanager
    def guard(self, slot: _Slot, seconds: float) -> Iterator[Callable[[], bool]]:
        """Run the body under a deadline; yields a function telling whether it fired."""
        token = next(self._ids)
        with self._cond:
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._run, name="smb-watchdog", daemon=True)
                self._thread.start()
            self._active[token] = slot
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            self._cond.notify()
        try:
            yield lambda: token in self._fired
        finally:
            with self._cond:
                self._active.pop(token, None)
                self._fired.discard(token)

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                while self._heap and self._heap[0][1] not in self._active:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                slot = self._active[token]
                self._fired.add(token)
                log.warning("an SMB request got no answer in time; closing its connection")
                slot.drop()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()


class SmbStore:
    """Files below one folder of an SMB share. Thread-safe; read-only by construction."""

    def __init__(self, location: SmbLocation) -> None:
        self.location = location
        self.description = location.description
        self._pool = _Pool(f"{location.host.lower()}:{location.port}", location.connections)
        self._watchdog = _Watchdog()
        self._request_timeout = location.request_timeout

    def __repr__(self) -> str:
        return f"SmbStore({self.description!r})"

    # -- connections -------------------------------------------------------------------------

    def _kwargs(self, slot: _Slot) -> dict[str, Any]:
        loc = self.location
        return {
            "username": loc.username,
            "password": loc.password,
            "port": loc.port,
            "encrypt": loc.encrypt or None,
            "connection_timeout": loc.timeout,
            "connection_cache": slot.cache,
        }

    def _connect(self, slot: _Slot) -> bool:
        """Make sure ``slot`` has a live, logged-on connection; True when it made a new one."""
        with slot.lock:
            if slot.alive():
                return False
            slot.drop()
            try:
                smbclient.register_session(self.location.host, **self._kwargs(slot))
            except BaseException:
                slot.drop()  # never keep a half-made connection (a failed logon) around
                raise
            return True

    def _run(self, action: Callable[[_Slot, dict[str, Any]], T], what: str) -> T:
        """Run one smbclient action on a pooled connection, once more if the connection was
        stale, and translate smbprotocol's errors into the gateway's."""
        for attempt in (1, 2):
            slot = self._pool.acquire()
            fresh = False
            try:
                with self._watchdog.guard(slot, self._request_timeout) as fired:
                    try:
                        fresh = self._connect(slot)
                        return action(slot, self._kwargs(slot))
                    except Exception as exc:
                        if fired():
                            raise Unavailable(
                                f"{self.description}: the server stopped answering "
                                f"(no reply in {self._request_timeout:g} s)"
                            ) from None
                        if attempt == 1 and "credits are available" in str(exc):
                            time.sleep(0.05)  # read-ahead of other downloads holds the credits
                            continue
                        if _is_connection_failure(exc):
                            slot.drop()
                            if attempt == 1 and not fresh:
                                log.info("%s: SMB connection lost, reconnecting", self.description)
                                continue
                        raise self._translate(exc, what) from None
            finally:
                self._pool.release(slot)
        raise AssertionError("unreachable")  # pragma: no cover

    def _translate(self, exc: BaseException, what: str) -> GatewayError:
        """The gateway error for an smbprotocol (or socket) error; never mentions the password."""
        desc = self.description
        status = _status(exc)
        if isinstance(exc, GatewayError):
            return exc
        if status in _LOGON_STATUS or isinstance(exc, SMBAuthenticationError):
            return Unavailable(f"{desc}: the server refused the user name or password")
        if isinstance(exc, BadNetworkName):
            return _NoShare(f"{desc}: the server has no share {self.location.share!r}")
        if isinstance(exc, SMBOSError):
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
                return NotFound(f"no {what}")
            if exc.errno == errno.EACCES:
                return Forbidden(f"{desc}: access denied to {what}")
            if status == 0xC0000033:  # STATUS_OBJECT_NAME_INVALID
                return Forbidden(f"{desc}: the server refused the name of {what}")
        if isinstance(exc, ValueError) and "Failed to connect" in str(exc):
            reason = str(exc).rpartition(": ")[2]
            return Unavailable(f"{desc}: cannot connect ({reason})")
        if isinstance(exc, SMBException) and "Connection timeout" in str(exc):
            return Unavailable(f"{desc}: the server did not answer in time")
        if _is_connection_failure(exc):
            return Unavailable(f"{desc}: the connection failed ({type(exc).__name__})")
        return Unavailable(f"{desc}: {self._scrub(str(exc)) or type(exc).__name__}")

    def _scrub(self, text: str) -> str:
        password = self.location.password
        return text.replace(password, "***") if password else text

    # -- the Store contract --------------------------------------------------------------------

    def check(self) -> None:
        """Log on and make sure the root folder exists.

        ``ConfigError`` when the share or the folder does not exist (or is a file);
        ``Unavailable`` when the server cannot be reached or refuses the credentials.
        """
        loc = self.location
        try:
            st = self._run(lambda _, kw: smbclient.stat(loc.unc(), **kw), "source folder")
        except (NotFound, _NoShare):
            if not loc.root or not self._share_exists():
                raise ConfigError(
                    f"the SMB server of {self.description} has no share {loc.share!r}"
                ) from None
            raise ConfigError(f"the source folder {self.description} does not exist") from None
        if not st.st_file_attributes & _DIR:
            raise ConfigError(f"the source {self.description} is not a folder")

    def _share_exists(self) -> bool:
        share = "\\".join(("", "", self.location.host, self.location.share))
        try:
            self._run(lambda _, kw: smbclient.stat(share, **kw), "share")
        except (NotFound, _NoShare):
            return False
        return True

    def list(
        self, prefix: str, *, recursive: bool = False, match: NameFilter | None = None
    ) -> Iterator[Entry]:
        """Yield a folder's entries from the directory listing itself (no stat per file).

        Each folder is read whole in one request series; reparse points (symbolic links,
        junctions) are skipped, so a listing never leads outside the share.
        """
        parts = smb_segments(prefix, allow_root=True)
        return self._walk(prefix, parts, recursive, match)

    def _walk(
        self, prefix: str, parts: Sequence[str], recursive: bool, match: NameFilter | None
    ) -> Iterator[Entry]:
        pending = [(prefix, parts)]
        while pending:
            key_prefix, folder = pending.pop()
            try:
                rows = self._scandir(folder, f"folder {key_prefix!r}")
            except NotFound:
                if key_prefix == prefix:
                    raise
                continue  # vanished while walking
            for name, attrs, size, mtime in rows:
                if attrs & _REPARSE:
                    continue
                key = join_key(key_prefix, name)
                is_dir = bool(attrs & _DIR)
                if is_dir and recursive:
                    pending.append((key, [*folder, name]))
                    continue
                if not is_dir and match is not None and not match(name):
                    continue
                yield Entry(key, 0 if is_dir else size, mtime, is_dir)

    def _scandir(self, folder: Sequence[str], what: str) -> _Rows:
        """List one folder: its entries with the metadata the listing itself carries.

        smbclient's ``scandir`` parses every entry with smbprotocol's generic (slow) structure
        code and builds a file object per entry; this sends the same QUERY_DIRECTORY requests
        on the opened folder and reads the fixed-layout records with ``struct``, several
        times faster on big day folders (see bench/smb.py).
        """
        unc = self.location.unc(folder)

        def action(slot: _Slot, kw: dict[str, Any]) -> _Rows:
            raw = smbclient.open_file(
                unc, mode="rb", buffering=0, file_type="dir", share_access=_SHARE_ACCESS, **kw
            )
            try:
                return _query_directory(raw.fd)
            finally:
                self._close_file(slot, raw)

        return self._run(action, what)

    def stat(self, key: str) -> Entry:
        """One round trip; ``NotFound`` for a folder, ``Forbidden`` for a reparse point."""
        unc = self.location.unc(smb_segments(key))
        st = self._run(lambda _, kw: smbclient.stat(unc, **kw), f"file {key!r}")
        if st.st_file_attributes & _DIR:
            raise NotFound(f"no file {key!r}")
        if st.st_file_attributes & _REPARSE:
            raise Forbidden(f"refused key {key!r}: a link")
        mtime = datetime.fromtimestamp(st.st_mtime, UTC)
        return Entry(key, st.st_size, mtime)

    def open(self, key: str, start: int = 0, end: int | None = None) -> ByteStream:
        """Stream bytes ``start`` to ``end`` (exclusive, ``None``: to the end of the file).

        The file is opened here (so a missing file is ``NotFound`` from this call); closing
        the stream, read or not, closes the remote file and frees its pooled connection."""
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"bad byte range {start}-{end}")
        return SmbChunks(self, key, smb_segments(key), start, end)

    def close(self) -> None:
        """Log off and close every pooled connection."""
        self._watchdog.stop()
        self._pool.close()

    # -- used by SmbChunks ---------------------------------------------------------------------

    def _open_file(self, key: str, parts: Sequence[str]) -> tuple[_Slot, Any]:
        """Open ``key`` for reading on a pooled connection, which stays taken until the caller
        gives it back with ``_release``."""
        unc = self.location.unc(parts)

        def action(slot: _Slot, kw: dict[str, Any]) -> tuple[_Slot, Any]:
            raw = smbclient.open_file(unc, mode="rb", buffering=0, share_access=_SHARE_ACCESS, **kw)
            self._pool.hold(slot)
            return slot, raw

        slot, raw = self._run(action, f"file {key!r}")
        if raw.fd.file_attributes & _REPARSE:
            self._close_file(slot, raw)
            self._release(slot)
            raise Forbidden(f"refused key {key!r}: a link")
        return slot, raw

    def _close_file(self, slot: _Slot, raw: Any) -> None:
        """Close a remote file, quietly: its connection may be gone (the server frees it then)."""
        try:
            with self._watchdog.guard(slot, self._request_timeout):
                raw.close()
        except Exception as exc:
            log.debug("closing an SMB file failed: %r", exc)

    def _release(self, slot: _Slot) -> None:
        self._pool.release(slot)


_DIR_INFO = struct.Struct("<IIqqqqqqII")
"""FILE_DIRECTORY_INFORMATION (MS-FSCC 2.4.10) up to FileNameLength; the name follows."""
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_LIST_BUFFER = 4 * _PAYLOAD  # bytes of directory records asked for per request


def _query_directory(fd: Any) -> _Rows:
    """Every entry of an opened folder: (name, attributes, size, modification time)."""
    conn = fd.connection
    session_id = fd.tree_connect.session.session_id
    tree_id = fd.tree_connect.tree_connect_id
    rows: _Rows = []
    flags = QueryDirectoryFlags.SMB2_RESTART_SCANS
    while True:
        msg, _ = fd.query_directory(
            "*", FileInformationClass.FILE_DIRECTORY_INFORMATION, flags=flags,
            max_output=_LIST_BUFFER, send=False,
        )  # fmt: skip
        request = conn.send(msg, sid=session_id, tid=tree_id, credit_request=8)
        try:
            response = conn.receive(request)
        except (NoMoreFiles, NoSuchFile):  # both end an enumeration (MS-SMB2 3.3.5.18)
            return rows
        body = SMB2QueryDirectoryResponse()
        body.unpack(response["data"].get_value())
        rows.extend(_directory_records(body["buffer"].get_value()))
        flags = 0


def _directory_records(buf: bytes) -> Iterator[_Row]:
    offset = 0
    while offset + _DIR_INFO.size <= len(buf):
        next_offset, _, _, _, written, _, size, _, attrs, name_len = _DIR_INFO.unpack_from(
            buf, offset
        )
        start = offset + _DIR_INFO.size
        name = buf[start : start + name_len].decode("utf-16-le")
        if name not in (".", ".."):
            yield name, attrs, size, _FILETIME_EPOCH + timedelta(microseconds=written // 10)
        if next_offset == 0:
            return
        offset += next_offset


class SmbChunks:
    """The bytes of one byte range of a remote file, as an iterator of chunks with ``close``.

    Keeps up to ``READ_AHEAD`` reads in flight. If the connection is lost midway, the file is
    opened again on a fresh connection and the download goes on from the next byte (once per
    chunk). Closing (or exhausting) it closes the remote file and frees its connection.
    """

    def __init__(
        self, store: SmbStore, key: str, parts: Sequence[str], start: int, end: int | None
    ) -> None:
        self._store = store
        self._key = key
        self._parts = parts
        self._pending: deque[tuple[int, int, Any, Callable[[Any], bytes]]] = deque()
        """Reads in flight: offset, length, the request, and the function receiving its reply."""
        # errors known before the first byte are raised here
        self._slot: _Slot | None
        self._slot, self._raw = store._open_file(key, parts)
        size = int(self._raw.fd.end_of_file)
        self._offset = min(start, size)
        self._sent = self._offset
        self._end = size if end is None else min(end, size)
        self._buffer = b""
        """The last read's bytes; ``_offset`` is the file offset right after them."""
        self._pos = 0
        self._requested = 0

    def __iter__(self) -> SmbChunks:
        return self

    def __next__(self) -> bytes:
        if self._pos < len(self._buffer):
            return self._take()
        if self._raw is None:
            raise StopIteration
        if self._offset >= self._end:
            self.close()
            raise StopIteration
        for attempt in (1, 2):
            try:
                data = self._next_read()
                break
            except Exception as exc:
                if attempt == 1 and _is_connection_failure(exc):
                    log.info(
                        "%s: SMB connection lost while reading, reopening", self._store.description
                    )
                    self._reopen()
                    continue
                self.close()
                if isinstance(exc, GatewayError):
                    raise
                raise self._store._translate(exc, f"file {self._key!r}") from None
        if not data:  # the file shrank since it was opened
            self.close()
            raise StopIteration
        requested = self._requested
        self._offset += len(data)
        if len(data) < requested and self._offset < self._end:
            self._end = self._offset  # a short read: the end of the file moved
            self._drain()
        self._buffer, self._pos = data, 0
        return self._take()

    def _take(self) -> bytes:
        """The next piece (at most ``CHUNK_SIZE``) of the last read."""
        piece = self._buffer[self._pos : self._pos + CHUNK_SIZE]  # the read itself if it fits
        self._pos += len(piece)
        return piece

    def _next_read(self) -> bytes:
        fd = self._raw.fd
        assert self._slot is not None
        deadline = time.monotonic() + self._store._request_timeout
        while len(self._pending) < READ_AHEAD and self._sent < self._end:
            length = min(READ_SIZE, fd.connection.max_read_size, self._end - self._sent)
            if not self._send_read(fd, length):
                if self._pending:
                    break  # out of credits: our own replies will bring some back
                if time.monotonic() > deadline:
                    raise Unavailable(f"{self._store.description}: the server grants no credits")
                time.sleep(0.002)  # other downloads hold the credits; theirs come back soon
        offset, self._requested, request, receive = self._pending.popleft()
        assert offset == self._offset
        assert self._slot is not None
        with self._store._watchdog.guard(self._slot, self._store._request_timeout) as fired:
            try:
                data = receive(request)
            except Exception:
                if fired():
                    raise Unavailable(
                        f"{self._store.description}: the server stopped answering"
                    ) from None
                raise
        return data

    def _send_read(self, fd: Any, length: int) -> bool:
        """Send one READ if the connection's credit window allows it; False when it does not.

        Read-ahead leaves a few credits free for other requests on the connection (smbprotocol
        fails a request it has no credits for instead of waiting)."""
        conn = fd.connection
        charge = (length - 1) // _PAYLOAD + 1
        assert self._slot is not None
        with self._slot.send_lock:
            window = conn.sequence_window
            reserve = _CREDIT_RESERVE if self._pending else 0  # the first read always may go
            if window["high"] - window["low"] < charge + reserve:
                return False
            msg, receive = fd.read(self._sent, length, send=False)
            request = conn.send(
                msg,
                sid=fd.tree_connect.session.session_id,
                tid=fd.tree_connect.tree_connect_id,
                credit_request=charge * 2,  # grow the window towards what read-ahead needs
            )
        self._pending.append((self._sent, length, request, receive))
        self._sent += length
        return True

    def _reopen(self) -> None:
        self._pending.clear()
        slot = self._slot
        self._slot = self._raw = None
        if slot is not None:
            slot.drop()
            self._store._release(slot)
        self._slot, self._raw = self._store._open_file(self._key, self._parts)
        self._sent = self._offset

    def _drain(self) -> None:
        """Collect the replies of reads still in flight, so the connection forgets them."""
        if self._raw is None:
            self._pending.clear()
            return
        assert self._slot is not None
        try:
            with self._store._watchdog.guard(self._slot, self._store._request_timeout):
                while self._pending:
                    _, _, request, receive = self._pending.popleft()
                    receive(request)
        except Exception as exc:
            log.debug("an abandoned SMB read failed: %r", exc)
        self._pending.clear()

    def close(self) -> None:
        """Close the remote file and free the connection; safe to call twice."""
        raw, slot = self._raw, self._slot
        if raw is None:
            return
        self._drain()
        self._raw = self._slot = None
        self._buffer, self._pos = b"", 0
        if slot is not None:
            self._store._close_file(slot, raw)
            self._store._release(slot)

    def __del__(self) -> None:
        if getattr(self, "_raw", None) is not None:
            self.close()
