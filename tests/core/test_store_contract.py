"""The local store passes the contract suite, and the suites catch broken stores and layouts."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.testing import CONTRACT_FILES, StoreContract
from gateway_local import LocalStore

pytest_plugins = ["pytester"]


def populate(root: Path) -> Path:
    for key, data in CONTRACT_FILES.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root.parent / "outside.wav").write_bytes(b"secret")
    return root


class TestLocalStore(StoreContract):
    @pytest.fixture
    def contract_store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(populate(tmp_path / "root"))

    @pytest.fixture
    def contract_missing_root_store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(tmp_path / "no-such-folder")


# A local store that can play a server that is down, the way a network store must: every
# method raises Unavailable. Each flaw below overrides some of its methods; the contract test
# named with it must fail (and the suite must end in bounded time, hangs included).
SIMULATED = """
import threading, time
from gateway.errors import NotFound, Unavailable
from gateway.storage import CHUNK_SIZE
from gateway_local import FileChunks, LocalStore

class Simulated(LocalStore):
    down = False

    def _server(self):
        if self.down:
            raise Unavailable(f"{self.description}: cannot connect")

    def check(self):
        self._server()
        super().check()

    def list(self, prefix, **kwargs):
        self._server()
        return super().list(prefix, **kwargs)

    def stat(self, key):
        self._server()
        return super().stat(key)

    def open(self, key, start=0, end=None):
        self._server()
        return super().open(key, start, end)
"""

# flaw -> (the contract test that must catch it, methods overriding Simulated's)
BROKEN_STORES = {
    "none": ("", "pass"),
    "ignores_ranges": (
        "test_open_reads_exactly_the_range",
        """
        def open(self, key, start=0, end=None):
            return super().open(key)  # always the whole file
        """,
    ),
    "lets_dotdot_escape": (
        "test_keys_that_leave_the_root_are_refused",
        """
        def _path(self, key, *, allow_root=False):
            return (self.root / key).resolve()  # no key checks at all
        """,
    ),
    "reads_whole_file": (
        "test_open_streams_in_chunks",
        """
        def open(self, key, start=0, end=None):
            return (c for c in [b"".join(super().open(key, start, end))])
        """,
    ),
    "reads_whole_file_for_a_range": (
        "test_a_small_range_is_read_without_holding_the_file",
        """
        def open(self, key, start=0, end=None):
            data = b"".join(super().open(key))  # the whole file, then the range cut out
            stop = len(data) if end is None else min(end, len(data))
            return (data[i : min(i + CHUNK_SIZE, stop)] for i in range(start, stop, CHUNK_SIZE))
        """,
    ),
    "check_checks_nothing": (
        "test_check_of_a_missing_root_is_a_config_error",
        """
        def check(self):
            self._server()  # reachable, but is the root there?
        """,
    ),
    "raw_errors_when_down": (
        "test_an_unreachable_store_is_unavailable_quickly",
        """
        def _server(self):
            if self.down:
                raise ConnectionRefusedError(111, "Connection refused")  # the SDK's own
        """,
    ),
    "raw_errors_for_long_names": (
        "test_keys_without_a_file_give_only_gateway_errors",
        """
        def stat(self, key):
            if len(key) > 255:
                raise OSError(36, "File name too long")  # what os.stat says, untranslated
            return super().stat(key)
        """,
    ),
    "down_is_not_found": (
        "test_an_unreachable_store_is_unavailable_quickly",
        """
        def _server(self):
            if self.down:
                raise NotFound("no such file")  # a search would say: no recording
        """,
    ),
    "leaks_unread_streams": (
        "test_streams_closed_unread_release_what_they_hold",
        """
        def open(self, key, start=0, end=None):
            chunks = super().open(key, start, end)

            class Leaky:
                def __iter__(self):
                    return self

                def __next__(self):
                    return next(chunks)

                def close(self):
                    pass  # the file stays open until the stream is garbage

            return Leaky()
        """,
    ),
    "shares_one_handle": (
        "test_concurrent_reads_get_the_right_bytes",
        """
        handles = {}

        def open(self, key, start=0, end=None):
            path = self._path(key)
            handle = self.handles.setdefault(path, path.open("rb"))  # one for every reader

            class Shared(FileChunks):
                def close(self):
                    pass

            return Shared(handle, start, end)
        """,
    ),
    "deadlocks_concurrent_reads": (
        "test_concurrent_reads_get_the_right_bytes",
        """
        reading = []

        def open(self, key, start=0, end=None):
            if self.reading:
                threading.Event().wait()  # waits for a lock that the other reader never frees
            chunks = super().open(key, start, end)
            self.reading.append(chunks)
            stream = self

            class Tracked:
                def __iter__(self):
                    return self

                def __next__(self):
                    return next(chunks)

                def close(self):
                    chunks.close()
                    if chunks in stream.reading:
                        stream.reading.remove(chunks)

            return Tracked()
        """,
    ),
}


@pytest.mark.parametrize("flaw", sorted(BROKEN_STORES))
def test_the_contract_suite_fails_on_a_broken_store(pytester: pytest.Pytester, flaw: str) -> None:
    catcher, method = BROKEN_STORES[flaw]
    body = textwrap.indent(textwrap.dedent(method), "    ")
    pytester.makepyfile(
        test_broken=f"""
import pytest
from gateway.testing import CONTRACT_FILES, StoreContract
{SIMULATED}

class Broken(Simulated):
{body}

class TestBroken(StoreContract):
    contract_deadline = 10.0
    contract_unreachable_seconds = 5.0

    @pytest.fixture
    def contract_store(self, tmp_path):
        root = tmp_path / "root"
        for key, data in CONTRACT_FILES.items():
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(data)
        (tmp_path / "outside.wav").write_bytes(b"secret")
        return Broken(root)

    @pytest.fixture
    def contract_missing_root_store(self, tmp_path):
        return Broken(tmp_path / "missing")

    @pytest.fixture
    def contract_unreachable_store(self, contract_store):
        contract_store.down = True
        return contract_store
"""
    )
    result = pytester.runpytest_subprocess("-q", "-rfE", "-p", "no:cacheprovider", timeout=300)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 0  # the suite ran
    failed = [line for line in result.outlines if line.startswith(("FAILED", "ERROR"))]
    if not catcher:  # the unbroken simulation keeps the whole contract
        assert failed == [], result.stdout.str()
        assert outcomes.get("skipped", 0) == 0, result.stdout.str()
        return
    assert any(f"::{catcher}" in line for line in failed), failed or result.stdout.str()


# flaw -> (the layout contract test that must catch it, the broken layout's class body)
BROKEN_LAYOUTS = {
    "none": ("", "pass"),
    "crashes_without_a_tenant": (
        "test_every_query_gets_scans_or_a_usage_error",
        """
        def scans(self, query, days):
            return [Scan(query.tenant.lower() + "/" + d.isoformat()) for d in days]
        """,
    ),
    "absolute_folders": (
        "test_scans_are_safe_folder_keys",
        """
        def scans(self, query, days):
            return [Scan(f"/recordings/{d:%Y/%m/%d}/") for d in days]  # not keys of the root
        """,
    ),
    "remembers_the_last_query": (
        "test_scans_depend_only_on_the_query",
        """
        last = []

        def scans(self, query, days):
            self.last.append(query.tenant or "all")  # state kept between calls
            return [Scan(self.last[-2] if len(self.last) > 1 else "all")]
        """,
    ),
    "keys_beyond_the_prefix": (
        "test_key_patterns_match_only_keys_below_the_prefix",
        """
        def scans(self, query, days):
            return [Scan("2026", recursive=True, keys=re.compile(r".*\\.wav"))]
        """,
    ),
    "unescaped_tenant_pattern": (
        "test_tenant_keys_keep_tenants_apart",
        """
        def tenant_keys(self, tenant):
            return re.compile(tenant + "/.+")  # "a.b" accepts "aXb/..."; "t1" accepts "t10/..."?
        """,
    ),
    "tenant_pattern_for_everyone": (
        "test_tenant_keys_keep_tenants_apart",
        """
        def tenant_keys(self, tenant):
            return re.compile(r"[^/]+/archive/.+")  # any tenant's archive
        """,
    ),
}


@pytest.mark.parametrize("flaw", sorted(BROKEN_LAYOUTS))
def test_the_layout_suite_fails_on_a_broken_layout(pytester: pytest.Pytester, flaw: str) -> None:
    catcher, method = BROKEN_LAYOUTS[flaw]
    body = textwrap.indent(textwrap.dedent(method), "    ")
    pytester.makepyfile(
        test_broken_layout=f"""
import re
import pytest
from gateway.layout import Scan
from gateway.placeholders import PathPattern
from gateway.testing import LayoutContract

class Broken(PathPattern):
{body}

class TestBroken(LayoutContract):
    contract_deadline = 30.0

    @pytest.fixture
    def contract_layout(self):
        return Broken("%TE/archive/%YY/%ME/%DD", recursive=False, tenant_optional=True)
"""
    )
    result = pytester.runpytest_subprocess("-q", "-rfE", "-p", "no:cacheprovider", timeout=300)
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 0
    failed = [line for line in result.outlines if line.startswith(("FAILED", "ERROR"))]
    if not catcher:
        assert failed == [], result.stdout.str()
        return
    assert any(f"::{catcher}" in line for line in failed), failed or result.stdout.str()
