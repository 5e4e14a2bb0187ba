"""Contract test suites for store and layout plugins (pytest).

A store implementation proves it keeps the store contract (``gateway.storage``) by running
``StoreContract`` against itself: subclass it in a test module and provide a ``contract_store``
fixture that returns a store whose root holds exactly ``CONTRACT_FILES`` (write them with your
back-end's own tools; the store itself is read-only)::

    import pytest
    from gateway.testing import CONTRACT_FILES, StoreContract

    class TestZipStore(StoreContract):
        @pytest.fixture
        def contract_store(self, tmp_path):
            archive = make_zip(tmp_path / "calls.zip", CONTRACT_FILES)
            return ZipStore(archive)

Fixtures a ``StoreContract`` subclass provides (only the first is required; an optional one
left out gives a harmless default, or skips the tests that need it):

``contract_store``
    The store under test, its root holding exactly ``CONTRACT_FILES``. A generator fixture
    can ``close()`` it afterwards.
``contract_secrets``
    Strings (passwords, secret keys) that must never show in the store's ``description``, its
    ``repr`` or any error message, of ``contract_store`` and ``contract_unreachable_store``.
    Default: none.
``contract_escaping_links``
    Keys below the root that are symbolic links leading outside it, to a file or a folder
    holding ``CANARY``, where the back-end has links. Listings must not show them and every
    method must refuse them (and ``KEY/outside.wav`` below each). Default: none.
``contract_missing_root_store``
    A store of the same type whose root does not exist (a folder, share path or bucket
    prefix that is not there). ``check()`` must raise ``ConfigError``; ``stat``, ``open`` and
    ``list`` must raise ``NotFound`` or ``ConfigError``. Without it, those tests skip.
``contract_unreachable_store``
    A store of the same type that cannot work: its server is down (a closed port on
    127.0.0.1) or refuses its credentials; give it short timeouts. ``check()``, ``list()``,
    ``stat()`` and ``open()`` must each raise ``Unavailable`` (never ``NotFound``, never an
    SDK's own exception) within ``contract_unreachable_seconds``, naming no secret. A back-end
    without a server (a local folder, an archive) leaves it out and those tests skip. It may
    be parametrized to test both (``params=["server-down", "wrong-password"]``).

``CANARY`` is what a subclass writes outside the root, where escaping links (and ``..``)
would lead: the traversal test fails loudly when these bytes come back.

The tests where a store is likely to hang (concurrent reads, abandoned downloads, the missing
root, the unreachable and the closed store) run it under a deadline: a store that hangs fails
the test with a message instead of hanging the run. The bounds are class attributes a subclass
may raise for a slow back-end: ``contract_deadline`` (seconds for the concurrency, leak and
closed-store tests, default 120) and ``contract_unreachable_seconds`` (seconds each call on the
unreachable or missing-root store may take, default 30).

Layouts run ``LayoutContract`` the same way, with a ``contract_layout`` fixture returning the
layout (built by its factory, with the options to test). To use a plugin in a test without
installing it, ``plugins_with(plugin)`` loads it like an installed one and returns the
gateway's ``Plugins``.
"""

from __future__ import annotations

import gc
import os
import random
import re
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import pytest

from gateway.errors import (
    ConfigError,
    Forbidden,
    GatewayError,
    NotFound,
    PluginError,
    Unavailable,
    UsageError,
)
from gateway.layout import WILDCARD, Layout, Scan, TenantFolders
from gateway.plugins import Plugins, load_plugins
from gateway.query import Query
from gateway.storage import CHUNK_SIZE, ByteStream, Entry, Store

T = TypeVar("T")

BIG = bytes(range(256)) * (3 * CHUNK_SIZE // 256 + 17)
"""Larger than a few chunks, every offset distinguishable."""

CONTRACT_FILES: dict[str, bytes] = {
    "top.wav": b"RIFF-top",
    "2026/03/09/in-100-200-20260309-101010-1773047410.1.wav": BIG,
    "2026/03/09/in-100-200-20260309-101010-1773047410.1.txt": b"not audio",
    "2026/03/09/empty.wav": b"",
    "2026/03/10/q-300-400-20260310-090000-1773129600.2.mp3": b"ID3" + b"\x00" * 1000,
    "tenant.example/archive/2026/Mar/09/0b4a6a36-aaaa.wav": b"RIFF-uuid",
}
"""The files a store under test must hold below its root (keys relative to it)."""

BIG_KEY = "2026/03/09/in-100-200-20260309-101010-1773047410.1.wav"

ESCAPES = (
    "../outside.wav",
    "2026/../../outside.wav",
    "/etc/passwd",
    "2026/03/09/../../../../etc/passwd",
    "top.wav\x00.mp3",
    "2026\\03\\09\\empty.wav",
    "./top.wav",
    "2026//03/09/empty.wav",
    "",
)
"""Keys every store must refuse with ``Forbidden`` (and never serve)."""

CANARY = b"CANARY: this file lies outside the store's root and must never be served"
"""What a contract subclass writes outside the root (and what its escaping symlinks lead to)."""

TRAVERSAL_CORPUS: tuple[str, ...] = (
    # plain dot-dot
    "..",
    "../outside.wav",
    "../../outside.wav",
    "2026/../../outside.wav",
    "2026/03/09/../../../../outside.wav",
    "...",
    ".../outside.wav",
    "..../outside.wav",
    "....//outside.wav",
    " ../outside.wav",
    ".. /outside.wav",
    "top.wav/..",
    "2026/03/09/empty.wav/../../../../outside.wav",
    # percent-encoded (a store takes keys literally: at most a file of that odd name)
    "%2e%2e/outside.wav",
    "%2e%2e%2foutside.wav",
    "..%2foutside.wav",
    "%2E%2E/%2E%2E/outside.wav",
    "..%5coutside.wav",
    "%2e%2e%5c%2e%2e%5coutside.wav",
    "%2fetc%2fpasswd",
    # double-encoded
    "%252e%252e/outside.wav",
    "%252e%252e%252foutside.wav",
    "..%252foutside.wav",
    "..%255coutside.wav",
    # overlong UTF-8 (as percent escapes, and as the raw code points they smuggle)
    "%c0%ae%c0%ae/outside.wav",
    "%c0%ae%c0%ae%c0%afoutside.wav",
    "..%c0%afoutside.wav",
    "..%c1%9coutside.wav",
    "%e0%80%ae%e0%80%ae/outside.wav",
    "%f0%80%80%ae%f0%80%80%ae/outside.wav",
    "\u00c0\u00ae\u00c0\u00ae/outside.wav",
    "\u00c0\u00ae\u00c0\u00ae\u00c0\u00afoutside.wav",
    # backslashes
    "..\\outside.wav",
    "2026\\..\\..\\outside.wav",
    "\\outside.wav",
    "\\\\127.0.0.1\\share\\outside.wav",
    "2026/03\\..\\..\\..\\outside.wav",
    # NUL and other control characters
    "top.wav\x00",
    "top.wav\x00.mp3",
    "..\x00/outside.wav",
    "\x00../outside.wav",
    "%00../outside.wav",
    "top.wav%00.mp3",
    "2026/\n/../outside.wav",
    "2026\r/top.wav",
    "\x7f/outside.wav",
    # absolute paths and URLs
    "/outside.wav",
    "//outside.wav",
    "/etc/passwd",
    "///etc/passwd",
    "/proc/self/environ",
    "file:///etc/passwd",
    "file:/etc/passwd",
    "~/outside.wav",
    "~root/.bashrc",
    # Windows: drives, UNC, device names, alternate data streams
    "C:\\Windows\\win.ini",
    "C:/Windows/win.ini",
    "c:outside.wav",
    "C:..\\outside.wav",
    "\\\\?\\C:\\outside.wav",
    "\\\\.\\GLOBALROOT\\outside.wav",
    "top.wav::$DATA",
    "top.wav:stream",
    "CON",
    "2026/NUL.wav",
    "COM1.wav",
    "top.wav.",
    "top.wav ",
    # unicode dots and slashes (look-alikes that a careless normaliser would fold)
    "\u2215etc\u2215passwd",
    "..\u2215outside.wav",
    "..\u2044outside.wav",
    "\uff0e\uff0e/outside.wav",
    "\uff0e\uff0e\uff0foutside.wav",
    "..\uff0foutside.wav",
    "..\uff3coutside.wav",
    "\u2024\u2024/outside.wav",
    "\u2025/outside.wav",
    "\ufe52\ufe52/outside.wav",
    "\u3002\u3002/outside.wav",
    ".\u0307./outside.wav",
    "\u202e../outside.wav",
    "\ufeff../outside.wav",
    "..\u2216outside.wav",
    "\u29f5outside.wav",
)
"""Hostile keys every store must answer with ``Forbidden`` or ``NotFound`` (never bytes):
encoded, double-encoded, overlong UTF-8, backslashes, NUL, absolute and Windows paths,
unicode dots and slashes. Also sent over HTTP by the proof tests (``tests/proof``)."""


ODD_KEYS = (
    "2026/03/09/none.wav",
    "nope/none.wav",
    "2026/03/09",
    "2026",
    "top.wav/below.wav",
    f"{BIG_KEY}/below.wav",
    "x" * 300 + ".wav",
    "2026/03/09/" + "y" * 1100 + ".wav",
    "ünïcødé/日本-1773047410.1.wav",
    "sp ace/in-1773047410.1.wav",
    "*.wav",
    "2026/03/09/?.wav",
    "#frag.wav",
    "top.wav?versionId=1",
    "top.wav;type=a",
    "top.wav%00.mp3",
)
"""Keys that hold no file (missing, folders, below a file, too long, odd characters):
``stat`` and ``open`` must answer ``NotFound`` or ``Forbidden``, and ``list`` nothing but the
gateway's errors."""

CLOSED_UNREAD = 200
"""How many streams the leak test opens and closes without reading."""

SMALL_RANGE = (1000, 1100)
"""A range of ``BIG_KEY`` the memory test reads: a store must not hold the whole file for it."""


def _read(store: Store, key: str, start: int = 0, end: int | None = None) -> bytes:
    chunks = store.open(key, start, end)
    try:
        return b"".join(chunks)
    finally:
        chunks.close()


def _open_and_close(store: Store, key: str) -> str:
    """Open ``key`` without reading it; what came back, for a message."""
    stream = store.open(key)
    stream.close()
    return f"a {type(stream).__name__} (open() must raise, not return a stream)"


def _difference(got: set[Any], want: set[Any]) -> str:
    """Which items are missing from ``got`` and which are extra, for a failure message."""
    return f"missing {sorted(want - got)!r:.600}, extra {sorted(got - want)!r:.600}"


def _wrong_bytes(got: bytes, start: int, end: int | None) -> str:
    want = BIG[start:end]
    if len(got) != len(want):
        return f"range {start}-{end}: {len(got)} bytes instead of {len(want)}"
    first = next(i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b)
    return f"range {start}-{end}: wrong bytes from offset {start + first}"


def _list_all(store: Store, prefix: str, *, recursive: bool = False) -> list[Entry]:
    return list(store.list(prefix, recursive=recursive))


def _keys(entries: Iterator[Entry]) -> set[str]:
    return {e.key for e in entries}


def _within(seconds: float, what: str, action: Callable[[], T]) -> T:
    """Run ``action`` on a daemon thread and return its result (or raise its exception); fail
    the test when it has not returned after ``seconds`` instead of hanging the run."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = action()
        except BaseException as exc:  # handed to the test's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"contract: {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what} has not returned after {seconds:g} s: the store hangs", pytrace=False)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def _open_fds() -> int | None:
    """How many file descriptors this process has open; ``None`` where that is unknown."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return None


@contextmanager
def _peak_memory() -> Iterator[Callable[[], int]]:
    """Measure the peak of the memory Python allocates inside the block (all threads), in
    bytes; works whether or not ``tracemalloc`` was already tracing."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    peak = 0
    try:
        yield lambda: peak
    finally:
        peak = tracemalloc.get_traced_memory()[1] - base
        if started:
            tracemalloc.stop()


def _traversal_problem(store: Store, key: str, what: str) -> str | None:
    """What is wrong with ``store``'s answer to ``what`` on a hostile key, or ``None``."""
    try:
        if what == "stat":
            got: object = store.stat(key)
        elif what == "open":
            got = _read(store, key)
        else:
            got = [e.key for e in store.list(key, recursive=what == "walk")]
    except (Forbidden, NotFound):
        return None
    except Exception as exc:
        return f"{what}({key!r}) raised {type(exc).__name__}: {exc}"
    leaked = " (bytes from outside the root!)" if isinstance(got, bytes) and CANARY in got else ""
    return f"{what}({key!r}) answered {got!r:.120}{leaked}"


def _error_problem(
    what: str, action: Callable[[], object], allowed: tuple[type[GatewayError], ...]
) -> str | None:
    """``None`` when ``action`` raises one of ``allowed`` (or, when ``allowed`` is empty,
    returns or raises a ``GatewayError``); else what went wrong."""
    try:
        got = action()
    except GatewayError as exc:
        if not allowed or isinstance(exc, allowed):
            return None
        want = " or ".join(a.__name__ for a in allowed)
        return f"{what} raised {type(exc).__name__}: {exc!s:.200} (must be {want})"
    except Exception as exc:
        return (
            f"{what} raised {type(exc).__module__}.{type(exc).__name__}: {exc!s:.200} "
            "(a store raises nothing but gateway.errors)"
        )
    if allowed:
        return f"{what} answered {got!r:.120}"
    return None


class StoreContract:
    """What every store must do. Provide the ``contract_store`` fixture in a subclass (see the
    module docstring for the optional fixtures)."""

    contract_deadline: float = 120.0
    """Seconds the concurrency and leak tests may take before they fail as hanging."""
    contract_unreachable_seconds: float = 30.0
    """Seconds each call on ``contract_unreachable_store`` may take to raise ``Unavailable``."""

    @pytest.fixture
    def contract_store(self) -> Store:
        raise NotImplementedError("provide a contract_store fixture holding CONTRACT_FILES")

    @pytest.fixture
    def contract_secrets(self) -> Sequence[str]:
        """Strings (passwords, keys) that must never show in descriptions or errors."""
        return ()

    @pytest.fixture
    def contract_escaping_links(self) -> Sequence[str]:
        """Keys below the root that are symlinks leading outside it (to files or folders
        holding ``CANARY``), where the back-end has symlinks. Listings must not show them and
        the traversal test must get ``Forbidden`` or ``NotFound`` for each (and for
        ``KEY/outside.wav`` below each)."""
        return ()

    @pytest.fixture
    def contract_missing_root_store(self) -> Store:
        """A store of the same type whose root does not exist (optional: skips without)."""
        pytest.skip("no contract_missing_root_store fixture: a store whose root does not exist")

    @pytest.fixture
    def contract_unreachable_store(self) -> Store:
        """A store of the same type whose server is down or refuses the credentials, with
        short timeouts (optional: skips without, for back-ends that have no server)."""
        pytest.skip("no contract_unreachable_store fixture: a store whose server is down")

    def test_is_a_store(self, contract_store: Store) -> None:
        assert isinstance(contract_store, Store), "not a Store: see gateway.storage.Store"
        contract_store.check()

    def test_recursive_list_gives_every_file_and_no_folder(self, contract_store: Store) -> None:
        entries = list(contract_store.list("", recursive=True))
        keys = {e.key for e in entries}
        assert keys == set(CONTRACT_FILES), _difference(keys, set(CONTRACT_FILES))
        assert not any(e.is_dir for e in entries), "a recursive listing gave a folder"

    def test_list_one_level_gives_files_and_folders(self, contract_store: Store) -> None:
        entries = {(e.key, e.is_dir) for e in contract_store.list("")}
        want = {("top.wav", False), ("2026", True), ("tenant.example", True)}
        assert entries == want, _difference(entries, want)
        day = {(e.key, e.is_dir) for e in contract_store.list("2026/03/09")}
        want = {(k, False) for k in CONTRACT_FILES if k.startswith("2026/03/09/")}
        assert day == want, _difference(day, want)

    def test_listed_entries_carry_size_and_utc_time(self, contract_store: Store) -> None:
        for entry in contract_store.list("", recursive=True):
            assert entry.size == len(CONTRACT_FILES[entry.key]), entry.key
            assert entry.mtime.tzinfo is not None, f"{entry.key}: a naive time"
            assert entry.mtime.utcoffset() == timedelta(0), f"{entry.key}: not in UTC"

    def test_list_applies_the_name_filter(self, contract_store: Store) -> None:
        listed = contract_store.list("", recursive=True, match=lambda name: name.endswith(".mp3"))
        keys, want = _keys(listed), {k for k in CONTRACT_FILES if k.endswith(".mp3")}
        assert keys == want, _difference(keys, want)

    def test_list_of_a_missing_folder_is_not_found(self, contract_store: Store) -> None:
        with pytest.raises(NotFound):
            list(contract_store.list("2026/03/11"))

    def test_stat(self, contract_store: Store) -> None:
        entry = contract_store.stat(BIG_KEY)
        got = (entry.key, entry.size, entry.is_dir)
        assert got == (BIG_KEY, len(BIG), False), f"stat gave {got}"
        assert entry.mtime.tzinfo is not None, "stat gave a naive time"

    def test_stat_of_missing_key_or_folder_is_not_found(self, contract_store: Store) -> None:
        with pytest.raises(NotFound):
            contract_store.stat("2026/03/09/none.wav")
        with pytest.raises(NotFound):
            contract_store.stat("2026/03/09")

    def test_open_reads_whole_files(self, contract_store: Store) -> None:
        for key, data in CONTRACT_FILES.items():
            assert _read(contract_store, key) == data, key

    @pytest.mark.parametrize(
        ("start", "end"),
        [(0, 1), (1, 2), (100, CHUNK_SIZE + 100), (CHUNK_SIZE, None), (len(BIG) - 1, None)],
    )
    def test_open_reads_exactly_the_range(
        self, contract_store: Store, start: int, end: int | None
    ) -> None:
        got = _read(contract_store, BIG_KEY, start, end)
        assert got == BIG[start:end], _wrong_bytes(got, start, end)

    def test_open_with_an_empty_range_reads_nothing(self, contract_store: Store) -> None:
        got = _read(contract_store, BIG_KEY, 10, 10)
        assert got == b"", f"an empty range gave {len(got)} bytes"

    def test_open_streams_in_chunks(self, contract_store: Store) -> None:
        stream = contract_store.open(BIG_KEY)
        try:
            assert isinstance(stream, ByteStream), "open() must return a closeable ByteStream"
            chunks = list(stream)
        finally:
            stream.close()
        assert len(chunks) > 1, "open() gave the whole file in one chunk: it must stream"
        assert max(len(c) for c in chunks) < len(BIG), "a chunk as big as the file"

    def test_a_small_range_is_read_without_holding_the_file(self, contract_store: Store) -> None:
        """A store that reads the whole file (or a big part of it) into memory and slices the
        range out of it: Python's allocations peak near the file's size."""
        start, end = SMALL_RANGE
        warm = _read(contract_store, BIG_KEY, 0, 10)  # connections, caches, clients made now
        assert warm == BIG[:10], _wrong_bytes(warm, 0, 10)
        with _peak_memory() as peak:
            got = _read(contract_store, BIG_KEY, start, end)
        assert got == BIG[start:end], _wrong_bytes(got, start, end)
        assert peak() < len(BIG) // 2, (
            f"reading bytes {start}-{end} of a {len(BIG)}-byte file allocated {peak()} bytes at "
            "its peak: open() must read from the back-end only what the range needs, never the "
            "whole file"
        )

    def test_open_of_a_missing_key_fails_before_the_first_byte(self, contract_store: Store) -> None:
        with pytest.raises(NotFound):
            contract_store.open("2026/03/09/none.wav")

    @pytest.mark.parametrize("key", ESCAPES)
    def test_keys_that_leave_the_root_are_refused(self, contract_store: Store, key: str) -> None:
        with pytest.raises(Forbidden):
            contract_store.stat(key)
        with pytest.raises(Forbidden):
            _read(contract_store, key)

    def test_keys_without_a_file_give_only_gateway_errors(self, contract_store: Store) -> None:
        """Missing keys, folders, keys below a file, over-long and odd names: ``NotFound`` or
        ``Forbidden`` from ``stat`` and ``open`` (raised by ``open`` itself), and nothing but
        ``gateway.errors`` from ``list``: an SDK's own exception must never escape."""
        store = contract_store
        problems: list[str] = []
        refused = (NotFound, Forbidden)
        for key in ODD_KEYS:
            checks: list[tuple[str, Callable[[], object], tuple[type[GatewayError], ...]]] = [
                (f"stat({key!r:.60})", partial(store.stat, key), refused),
                (f"open({key!r:.60})", partial(_open_and_close, store, key), refused),
                (f"list({key!r:.60})", partial(_list_all, store, key), ()),
                (f"walk({key!r:.60})", partial(_list_all, store, key, recursive=True), ()),
            ]
            for what, action, allowed in checks:
                problem = _error_problem(what, action, allowed)
                if problem:
                    problems.append(problem)
        assert problems == [], "\n".join(problems)

    def test_check_of_a_missing_root_is_a_config_error(
        self, contract_missing_root_store: Store, contract_secrets: Sequence[str]
    ) -> None:
        """``check()`` must look: a root that is not there is ``ConfigError`` (not ``NotFound``,
        which the search takes for "no recordings that day", nor ``Unavailable``)."""
        store = contract_missing_root_store
        try:
            _within(self.contract_unreachable_seconds, "check() of a missing root", store.check)
        except ConfigError as exc:
            error = str(exc)
        except Exception as exc:
            pytest.fail(
                f"check() of a store whose root does not exist raised {type(exc).__name__}: "
                f"{exc} (must be ConfigError)",
                pytrace=False,
            )
        else:
            pytest.fail(
                "check() of a store whose root does not exist raised nothing: it must verify "
                "that the root is there (ConfigError)",
                pytrace=False,
            )
        assert not [s for s in contract_secrets if s in error], "a secret in the error"
        actions: dict[str, Callable[[], object]] = {
            f"stat({BIG_KEY!r})": partial(store.stat, BIG_KEY),
            f"open({BIG_KEY!r})": partial(_open_and_close, store, BIG_KEY),
            "list('')": partial(_list_all, store, ""),
            "list('', recursive=True)": partial(_list_all, store, "", recursive=True),
        }
        problems = [
            _within(
                self.contract_unreachable_seconds,
                f"{what} with a missing root",
                partial(_error_problem, what, action, (NotFound, ConfigError)),
            )
            for what, action in actions.items()
        ]
        real = [p for p in problems if p]
        assert real == [], "\n".join(real)

    def test_an_unreachable_store_is_unavailable_quickly(
        self, contract_unreachable_store: Store, contract_secrets: Sequence[str]
    ) -> None:
        """A server that is down or refuses the credentials is ``Unavailable`` from every
        method, within seconds: never ``NotFound`` (a search would say "no recording" while
        the archive is unreachable) and never the SDK's own exception."""
        store = contract_unreachable_store
        seconds = self.contract_unreachable_seconds
        actions: dict[str, Callable[[], object]] = {
            "check()": store.check,
            "list('')": lambda: list(store.list("")),
            "list('2026/03/09', recursive=True)": lambda: list(
                store.list("2026/03/09", recursive=True)
            ),
            f"stat({BIG_KEY!r})": lambda: store.stat(BIG_KEY),
            f"open({BIG_KEY!r})": lambda: _open_and_close(store, BIG_KEY),
            f"open({BIG_KEY!r}, 10, 20)": lambda: _read(store, BIG_KEY, 10, 20),
        }
        problems: list[str] = []
        for what, action in actions.items():
            started = time.monotonic()
            try:
                got = _within(seconds, f"{what} on an unreachable store", action)
            except Unavailable as exc:
                if [s for s in contract_secrets if s in str(exc)]:
                    problems.append(f"{what}: the Unavailable error shows a secret")
                continue
            except Exception as exc:
                took = time.monotonic() - started
                problems.append(
                    f"{what} raised {type(exc).__module__}.{type(exc).__name__} after "
                    f"{took:.1f} s: {exc!s:.200} (an unreachable server is Unavailable)"
                )
                continue
            problems.append(f"{what} answered {got!r:.120} (an unreachable server is Unavailable)")
        assert problems == [], "\n".join(problems)

    def test_streams_closed_unread_release_what_they_hold(self, contract_store: Store) -> None:
        """Open ``CLOSED_UNREAD`` downloads and close each without reading a byte (a client
        that hangs up): no file descriptor, connection or thread may stay behind, even while
        the closed stream objects are still referenced, and the store still serves."""
        store = contract_store
        warm = _read(store, "top.wav")  # pools fill up now
        assert warm == CONTRACT_FILES["top.wav"], "top.wav: wrong bytes"
        gc.collect()
        fds, threads = _open_fds(), threading.active_count()

        def churn() -> list[ByteStream]:
            kept = []
            for n in range(CLOSED_UNREAD):
                stream = store.open(BIG_KEY, *((0, None), (n, n + 1000))[n % 2])
                stream.close()
                kept.append(stream)  # releasing must not wait for the garbage collector
            return kept

        kept = _within(
            self.contract_deadline, f"opening and closing {CLOSED_UNREAD} unread streams", churn
        )
        more_fds = None if fds is None else (_open_fds() or 0) - fds
        more_threads = threading.active_count() - threads
        limit = CLOSED_UNREAD // 4
        assert more_fds is None or more_fds < limit, (
            f"{CLOSED_UNREAD} streams closed before their first chunk left {more_fds} more file "
            "descriptors open: close() must release the stream's file, socket or session"
        )
        assert more_threads < limit, (
            f"{CLOSED_UNREAD} streams closed unread left {more_threads} more threads running"
        )
        del kept
        got = _within(self.contract_deadline, "a read after that", lambda: _read(store, BIG_KEY))
        assert got == BIG, "after many abandoned downloads the store no longer reads right"

    def test_concurrent_reads_get_the_right_bytes(self, contract_store: Store) -> None:
        """Readers on several threads at once, each streaming ranges over several chunks (and
        listing and statting between them): every one gets its own bytes. A client, handle or
        buffer shared between threads mixes them up; a deadlock fails within the deadline."""
        store = contract_store
        readers, rounds = 8, 4
        barrier = threading.Barrier(readers)
        day = {k for k in CONTRACT_FILES if k.startswith("2026/03/09/")}
        problems: list[str] = []

        def read(n: int) -> None:
            try:
                barrier.wait(timeout=self.contract_deadline)
                for r in range(rounds):
                    start = (n * 7919 + r * 104_729) % (len(BIG) // 2)
                    end = min(len(BIG), start + 2 * CHUNK_SIZE + 1000)
                    stream = store.open(BIG_KEY, start, end)
                    got = []
                    try:
                        for chunk in stream:
                            got.append(chunk)
                            time.sleep(0)  # let the other readers in between two chunks
                    finally:
                        stream.close()
                    if b"".join(got) != BIG[start:end]:
                        problems.append(f"reader {n}: wrong bytes for the range {start}-{end}")
                    if store.stat(BIG_KEY).size != len(BIG):
                        problems.append(f"reader {n}: stat gave a wrong size")
                    if _keys(store.list("2026/03/09")) != day:
                        problems.append(f"reader {n}: a wrong listing")
            except threading.BrokenBarrierError:
                problems.append(f"reader {n}: the others never started")
            except Exception as exc:
                problems.append(f"reader {n}: {type(exc).__name__}: {exc}")

        threads = [
            threading.Thread(target=read, args=(n,), name=f"contract-reader-{n}", daemon=True)
            for n in range(readers)
        ]
        deadline = time.monotonic() + self.contract_deadline
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            barrier.abort()
            pytest.fail(
                f"{len(stuck)} of {readers} concurrent readers still running after "
                f"{self.contract_deadline:g} s ({', '.join(stuck)}): the store hangs or deadlocks "
                "when several threads read at once",
                pytrace=False,
            )
        assert problems == [], "\n".join(problems)

    def test_a_closed_store_fails_cleanly(self, contract_store: Store) -> None:
        """After ``close()`` (and a second ``close()``) a store is not used by the gateway; if it
        is anyway, it works or raises a gateway error, never hangs or leaks an SDK error."""
        store = contract_store
        store.close()
        store.close()
        actions: dict[str, Callable[[], object]] = {
            "check()": store.check,
            "list('')": lambda: list(store.list("")),
            f"stat({BIG_KEY!r})": lambda: store.stat(BIG_KEY),
            "open('top.wav')": lambda: _read(store, "top.wav"),
        }
        problems = [
            _within(
                self.contract_deadline,
                f"{what} after close()",
                partial(_error_problem, what, action, ()),
            )
            for what, action in actions.items()
        ]
        real = [p for p in problems if p]
        assert real == [], "\n".join(real)

    def test_no_secret_in_description_or_errors(
        self, contract_store: Store, contract_secrets: Sequence[str]
    ) -> None:
        texts = [contract_store.description, repr(contract_store)]
        for bad in ("2026/03/09/none.wav", "../x.wav"):
            try:
                contract_store.stat(bad)
            except GatewayError as exc:
                texts.append(str(exc))
        for secret in contract_secrets:
            assert not any(secret in text for text in texts), "a secret in a description or error"

    def test_traversal_corpus_never_leaves_the_root(
        self, contract_store: Store, contract_escaping_links: Sequence[str]
    ) -> None:
        links = [*contract_escaping_links, *(f"{k}/outside.wav" for k in contract_escaping_links)]
        problems: list[str] = []
        for key in (*TRAVERSAL_CORPUS, *links):
            for what in ("stat", "open", "list", "walk"):
                problem = _traversal_problem(contract_store, key, what)
                if problem:
                    problems.append(problem)
        assert problems == [], "\n".join(problems)
        listed = _keys(contract_store.list("", recursive=True))
        assert not listed & set(links), "a listing shows a link that leads outside the root"


def plugins_with(*plugins: object, entry_points: bool = False) -> Plugins:
    """The gateway's plugins with ``plugins`` (modules or objects with ``@hookimpl``
    functions) loaded as if they were installed, for tests: no entry point, no installation.

    Besides them only the built-in layouts are loaded, unless ``entry_points`` is true (then
    every installed plugin too). Each is named after its module (``__name__``) or class.
    Raises ``PluginError`` when one of them fails to load, for example because it implements
    a hook the gateway does not have (a misspelt hook name)."""
    extra: list[tuple[str, object]] = []
    for plugin in plugins:
        name = str(getattr(plugin, "__name__", type(plugin).__name__))
        taken = {n for n, _ in extra}
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{name}-{n}"
        extra.append((unique, plugin))
    loaded = load_plugins(extra=extra, use_entry_points=entry_points)
    names = {n for n, _ in extra}
    failed = [f for f in loaded.failures if f.plugin in names]
    if failed:
        raise PluginError(
            "; ".join(f"plugin {f.plugin!r} failed to load: {f.error}" for f in failed)
        )
    return loaded


DAYS = (date(2026, 3, 8), date(2026, 3, 9))

LAYOUT_CALLIDS = (
    "1773047410.1",
    "0b4a6a36-aaaa-4bbb-8ccc-000000000001",
    "in-100-200-20260309-101010-1773047410.1",
    "..1",
    "1 2",
    "%YY%TE%1",
    "*1?",
    "1.wav",
    "ünï-1",
)
"""Call ids the layout contract asks for: Asterisk and FreeSWITCH ids, and odd ones a client
may send (dots, spaces, placeholders, wildcards, non-ASCII)."""
LAYOUT_TENANTS = (None, "pbx.example.com", "t1", "ünï-tenant")
LAYOUT_DAYS: tuple[tuple[date, ...], ...] = (
    (),
    (date(2026, 3, 9),),
    DAYS,
    (date(2024, 2, 29), date(2024, 3, 1)),
    (date(2026, 12, 31), date(2027, 1, 1)),
    (date(1970, 1, 1),),
    (date(9999, 12, 31),),
)
"""Day lists a layout must answer without crashing: none, one, two, across a leap day and a
year's end, and days far from any archive."""
LAYOUT_STARTS = (None, datetime(2026, 3, 9, 12, tzinfo=UTC))
TENANT_PAIRS = (
    ("t1.example.com", "t2.example.com"),
    ("t1", "t10"),
    ("pbx.example.com", "pbxXexample.com"),
    ("a", "a.b"),
)
"""Tenants a ``TenantFolders`` layout must keep apart: prefixes of each other, and names a
regular expression that forgot to escape its dots would confuse."""
_FILE = "in-100-200-20260309-101010-1773047410.1.wav"

_ScanKey = tuple[str, bool, str | None, int]
_Answer = tuple[_ScanKey, ...] | str


def layout_queries() -> Iterator[tuple[Query, tuple[date, ...]]]:
    """Every query (with its days) the layout contract asks a layout."""
    for callid in LAYOUT_CALLIDS:
        for tenant in LAYOUT_TENANTS:
            for start in LAYOUT_STARTS:
                for extra in ({}, {"queue": "300", "agent": "201", "server": "pbx1"}):
                    query = Query(callid, start=start, tenant=tenant, **extra)
                    for days in LAYOUT_DAYS:
                        yield query, days


def _scan_key(scan: Scan) -> _ScanKey:
    keys = scan.keys
    return (
        scan.prefix,
        scan.recursive,
        None if keys is None else keys.pattern,
        0 if keys is None else keys.flags,
    )


def _answer(layout: Layout, query: Query, days: Sequence[date]) -> _Answer:
    """The layout's scans for ``query`` in a comparable form, or ``"UsageError"``; any other
    exception propagates."""
    try:
        scans = layout.scans(query, days)
    except UsageError:
        return "UsageError"
    return tuple(_scan_key(s) for s in scans)


def _prefix_problem(prefix: object) -> str | None:
    if not isinstance(prefix, str):
        return f"a prefix that is no string: {prefix!r}"
    if prefix == "":
        return None
    for part in prefix.split("/"):
        if part in ("", ".", ".."):
            return f"an empty, '.' or '..' segment in {prefix!r}"
        if part != WILDCARD and (
            "\\" in part or any(ord(c) < 0x20 or ord(c) == 0x7F for c in part)
        ):
            return f"a backslash or control character in {prefix!r}"
    return None


def _below(prefix: str, key: str) -> bool:
    """Whether ``key`` lies below the folder ``prefix`` (a ``*`` segment matching any)."""
    if prefix == "":
        return True
    want, parts = prefix.split("/"), key.split("/")
    return len(parts) > len(want) and all(
        w in (WILDCARD, p) for w, p in zip(want, parts, strict=False)
    )


def _filled(prefix: str, folder: str = "any-folder") -> str:
    return "/".join(folder if p == WILDCARD else p for p in prefix.split("/")) if prefix else ""


def _keys_in(scan: Scan) -> list[str]:
    """Keys a file found by ``scan`` could have (those its ``keys`` pattern accepts)."""
    base = _filled(scan.prefix)
    lead = f"{base}/" if base else ""
    candidates = [f"{lead}{_FILE}"]
    if scan.recursive:
        candidates.append(f"{lead}sub/{_FILE}")
    return [k for k in candidates if scan.keys is None or scan.keys.fullmatch(k)]


class LayoutContract:
    """What every layout must do. Provide the ``contract_layout`` fixture in a subclass."""

    contract_deadline: float = 120.0
    """Seconds the thread-safety test may take before it fails as hanging."""

    @pytest.fixture
    def contract_layout(self) -> Layout:
        raise NotImplementedError("provide a contract_layout fixture")

    def _scans(self, layout: Layout, query: Query, days: Sequence[date]) -> Sequence[Scan]:
        try:
            return layout.scans(query, days)
        except UsageError:
            return []  # a layout may need more than this query holds

    def test_is_a_layout(self, contract_layout: Layout) -> None:
        assert isinstance(contract_layout, Layout), "a layout has a scans(query, days) method"

    def test_every_query_gets_scans_or_a_usage_error(self, contract_layout: Layout) -> None:
        """What a query lacks (a tenant, a start) is ``UsageError``: never ``KeyError``,
        ``TypeError`` or any other exception, whatever the call id, tenant or days (days far
        from the query's start, or from any archive, included)."""
        problems: list[str] = []
        for query, days in layout_queries():
            try:
                scans = contract_layout.scans(query, days)
            except UsageError:
                continue
            except Exception as exc:
                problems.append(f"{query} {days}: {type(exc).__name__}: {exc}")
                continue
            if not isinstance(scans, Sequence):
                problems.append(f"{query} {days}: scans() gave a {type(scans).__name__}")
            elif not all(isinstance(s, Scan) for s in scans):
                problems.append(f"{query} {days}: scans() gave something that is no Scan")
        assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])

    def test_scans_are_safe_folder_keys(self, contract_layout: Layout) -> None:
        problems: set[str] = set()
        for query, days in layout_queries():
            for scan in self._scans(contract_layout, query, days):
                problem = _prefix_problem(scan.prefix)
                if not isinstance(scan.recursive, bool):
                    problem = f"recursive={scan.recursive!r} is no bool"
                if scan.keys is not None and not isinstance(scan.keys, re.Pattern):
                    problem = f"keys={scan.keys!r} is no compiled pattern"
                if problem:
                    problems.add(f"callid={query.callid!r} tenant={query.tenant!r}: {problem}")
        assert not problems, f"{len(problems)} unsafe scans:\n" + "\n".join(sorted(problems)[:20])

    def test_scans_depend_only_on_the_query(self, contract_layout: Layout) -> None:
        """Asked again, in another order, a layout answers the same: it keeps no state."""
        queries = list(layout_queries())
        first = [_answer(contract_layout, q, d) for q, d in queries]
        again = [_answer(contract_layout, q, d) for q, d in reversed(queries)][::-1]
        changed = [f"{q} {d}" for (q, d), a, b in zip(queries, first, again, strict=True) if a != b]
        assert not changed, f"{len(changed)} queries got other scans the second time, as: " + (
            "\n".join(changed[:10])
        )

    def test_layout_is_thread_safe(self, contract_layout: Layout) -> None:
        """Threads asking at once get the same answers as one thread asking alone."""
        queries = list(layout_queries())
        want = [_answer(contract_layout, q, d) for q, d in queries]
        problems: list[str] = []

        def ask(n: int) -> None:
            order = list(range(len(queries)))
            random.Random(n).shuffle(order)
            try:
                for i in order:
                    query, days = queries[i]
                    if _answer(contract_layout, query, days) != want[i]:
                        problems.append(f"thread {n}: other scans for {query} {days}")
                        return
            except Exception as exc:
                problems.append(f"thread {n}: {type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=ask, args=(n,), daemon=True) for n in range(8)]
        deadline = time.monotonic() + self.contract_deadline
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        stuck = sum(t.is_alive() for t in threads)
        if stuck:
            pytest.fail(
                f"{stuck} threads still asking the layout after {self.contract_deadline:g} s",
                pytrace=False,
            )
        assert problems == [], "\n".join(problems)

    def test_key_patterns_match_only_keys_below_the_prefix(self, contract_layout: Layout) -> None:
        """A scan's ``keys`` pattern never accepts a key outside its ``prefix`` folder."""
        scans: set[Scan] = set()
        corpus = set(CONTRACT_FILES) | {"outside.wav", _FILE, f"../{_FILE}"}
        for query, days in layout_queries():
            for scan in self._scans(contract_layout, query, days):
                scans.add(scan)
        for scan in scans:
            base = _filled(scan.prefix)
            corpus.update(_keys_in(scan))
            if base:
                parent, _, last = base.rpartition("/")
                sibling = f"{parent}/{last}x" if parent else f"{last}x"
                corpus.update({f"{sibling}/{_FILE}", f"{base}x/{_FILE}", f"{sibling}/sub/{_FILE}"})
                corpus.add(f"{parent}/{_FILE}" if parent else _FILE)
        problems = sorted(
            f"keys {scan.keys.pattern!r} of prefix {scan.prefix!r} accepts {key!r}"
            for scan in scans
            if scan.keys is not None
            for key in corpus
            if scan.keys.fullmatch(key) and not _below(scan.prefix, key)
        )
        assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])

    def test_tenant_keys_keep_tenants_apart(self, contract_layout: Layout) -> None:
        """With ``TenantFolders``, a tenant's pattern accepts every key its own scans can find
        and no key another tenant's scans can find: a tenant's links never open another's
        recordings."""
        if not isinstance(contract_layout, TenantFolders):
            pytest.skip("this layout has no TenantFolders capability")
        kept_apart = False
        problems: list[str] = []
        for pair in TENANT_PAIRS:
            patterns = {t: contract_layout.tenant_keys(t) for t in pair}
            if all(p is None for p in patterns.values()):
                continue
            kept_apart = True
            owned = {t: self._tenant_files(contract_layout, t) for t in pair}
            for tenant, pattern in patterns.items():
                if pattern is None:
                    problems.append(f"tenant_keys({tenant!r}) is None, but not for the other")
                    continue
                problems += [
                    f"tenant_keys({tenant!r}) misses its own key {k!r}"
                    for k in sorted(owned[tenant])
                    if not pattern.fullmatch(k)
                ]
                for other in pair:
                    if other != tenant:
                        problems += [
                            f"tenant_keys({tenant!r}) accepts {k!r} of tenant {other!r}"
                            for k in sorted(owned[other])
                            if pattern.fullmatch(k)
                        ]
        if not kept_apart:
            pytest.skip("tenant_keys() is None: this layout does not keep tenants apart")
        assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:20])

    def _tenant_files(self, layout: Layout, tenant: str) -> set[str]:
        files: set[str] = set()
        for days in LAYOUT_DAYS:
            for start in LAYOUT_STARTS:
                query = Query("1773047410.1", start=start, tenant=tenant)
                for scan in self._scans(layout, query, days):
                    files.update(_keys_in(scan))
        return files
