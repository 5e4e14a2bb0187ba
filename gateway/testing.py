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

Optionally override ``contract_secrets`` (strings that must never appear in the store's
``description`` or error messages, such as its password). Layouts run ``LayoutContract`` the
same way, with a ``contract_layout`` fixture.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.errors import Forbidden, GatewayError, NotFound, UsageError
from gateway.layouts import WILDCARD, Layout, Scan
from gateway.query import Query
from gateway.storage import CHUNK_SIZE, Entry, Store

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


def _read(store: Store, key: str, start: int = 0, end: int | None = None) -> bytes:
    chunks = store.open(key, start, end)
    try:
        return b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _keys(entries: Iterator[Entry]) -> set[str]:
    return {e.key for e in entries}


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


class StoreContract:
    """What every store must do. Provide the ``contract_store`` fixture in a subclass."""

    @pytest.fixture
    def contract_store(self) -> Store:
        raise NotImplementedError("provide a contract_store fixture holding CONTRACT_FILES")

    @pytest.fixture
    def contract_secrets(self) -> Sequence[str]:
        """Strings (passwords, keys) that must never show in descriptions or errors."""
        return ()

    def test_is_a_store(self, contract_store: Store) -> None:
        assert isinstance(contract_store, Store)
        contract_store.check()

    def test_recursive_list_gives_every_file_and_no_folder(self, contract_store: Store) -> None:
        entries = list(contract_store.list("", recursive=True))
        assert {e.key for e in entries} == set(CONTRACT_FILES)
        assert not any(e.is_dir for e in entries)

    def test_list_one_level_gives_files_and_folders(self, contract_store: Store) -> None:
        entries = {(e.key, e.is_dir) for e in contract_store.list("")}
        assert entries == {("top.wav", False), ("2026", True), ("tenant.example", True)}
        day = {(e.key, e.is_dir) for e in contract_store.list("2026/03/09")}
        assert day == {(k, False) for k in CONTRACT_FILES if k.startswith("2026/03/09/")}

    def test_listed_entries_carry_size_and_utc_time(self, contract_store: Store) -> None:
        for entry in contract_store.list("", recursive=True):
            assert entry.size == len(CONTRACT_FILES[entry.key]), entry.key
            assert entry.mtime.tzinfo is not None
            assert entry.mtime.utcoffset() == timedelta(0)

    def test_list_applies_the_name_filter(self, contract_store: Store) -> None:
        listed = contract_store.list("", recursive=True, match=lambda name: name.endswith(".mp3"))
        assert _keys(listed) == {k for k in CONTRACT_FILES if k.endswith(".mp3")}

    def test_list_of_a_missing_folder_is_not_found(self, contract_store: Store) -> None:
        with pytest.raises(NotFound):
            list(contract_store.list("2026/03/11"))

    def test_stat(self, contract_store: Store) -> None:
        entry = contract_store.stat(BIG_KEY)
        assert (entry.key, entry.size, entry.is_dir) == (BIG_KEY, len(BIG), False)
        assert entry.mtime.tzinfo is not None

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
        assert _read(contract_store, BIG_KEY, start, end) == BIG[start:end]

    def test_open_with_an_empty_range_reads_nothing(self, contract_store: Store) -> None:
        assert _read(contract_store, BIG_KEY, 10, 10) == b""

    def test_open_streams_in_chunks(self, contract_store: Store) -> None:
        chunks = list(contract_store.open(BIG_KEY))
        assert len(chunks) > 1
        assert max(len(c) for c in chunks) < len(BIG)

    def test_open_of_a_missing_key_fails_before_the_first_byte(self, contract_store: Store) -> None:
        with pytest.raises(NotFound):
            contract_store.open("2026/03/09/none.wav")

    @pytest.mark.parametrize("key", ESCAPES)
    def test_keys_that_leave_the_root_are_refused(self, contract_store: Store, key: str) -> None:
        with pytest.raises(Forbidden):
            contract_store.stat(key)
        with pytest.raises(Forbidden):
            _read(contract_store, key)

    def test_concurrent_reads_get_the_right_bytes(self, contract_store: Store) -> None:
        errors: list[str] = []

        def read(offset: int) -> None:
            try:
                got = _read(contract_store, BIG_KEY, offset, offset + 50_000)
                if got != BIG[offset : offset + 50_000]:
                    errors.append(f"wrong bytes at {offset}")
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")

        threads = [threading.Thread(target=read, args=(i * 12_289,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []

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
            assert not any(secret in text for text in texts)

    @pytest.fixture
    def contract_escaping_links(self) -> Sequence[str]:
        """Keys below the root that are symlinks leading outside it (to files or folders
        holding ``CANARY``), where the back-end has symlinks. Listings must not show them and
        the traversal test must get ``Forbidden`` or ``NotFound`` for each (and for
        ``KEY/outside.wav`` below each)."""
        return ()

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


DAYS = (date(2026, 3, 8), date(2026, 3, 9))


class LayoutContract:
    """What every layout must do. Provide the ``contract_layout`` fixture in a subclass."""

    @pytest.fixture
    def contract_layout(self) -> Layout:
        raise NotImplementedError("provide a contract_layout fixture")

    def _scans(self, layout: Layout, query: Query, days: Sequence[date]) -> Sequence[Scan]:
        try:
            return layout.scans(query, days)
        except UsageError:
            return []  # a layout may need more than this query holds

    @pytest.mark.parametrize("days", [DAYS, ()])
    @pytest.mark.parametrize("tenant", ["pbx.example.com", None])
    def test_scans_are_safe_folder_keys(
        self, contract_layout: Layout, days: Sequence[date], tenant: str | None
    ) -> None:
        start = datetime(2026, 3, 9, 12, tzinfo=UTC) if days else None
        query = Query("1773047410.1", start=start, tenant=tenant, queue="300", agent="201")
        for scan in self._scans(contract_layout, query, days):
            assert isinstance(scan, Scan)
            if scan.prefix:
                parts = scan.prefix.split("/")
                assert all(p not in ("", ".", "..") for p in parts), scan.prefix
                assert all(p == WILDCARD or not {"\\", "\x00"} & set(p) for p in parts)

    def test_scans_depend_only_on_the_query(self, contract_layout: Layout) -> None:
        query = Query("1773047410.1", tenant="t1")
        assert list(self._scans(contract_layout, query, DAYS)) == list(
            self._scans(contract_layout, query, DAYS)
        )
