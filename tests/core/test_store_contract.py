"""The local store passes the contract suite, and the suite catches broken stores."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.layouts import FLAT, FREEPBX, FUSIONPBX, Layout, PathPattern
from gateway.testing import CONTRACT_FILES, LayoutContract, StoreContract
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


@pytest.mark.parametrize("layout", [FLAT, FREEPBX, FUSIONPBX, PathPattern("%TE/%YY-%MM")], ids=repr)
class TestBuiltinLayouts(LayoutContract):
    @pytest.fixture
    def contract_layout(self, layout: Layout) -> Layout:
        return layout


# flaw -> (method overriding LocalStore's, the contract test that must catch it)
BROKEN_STORES = {
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
            return iter([b"".join(super().open(key, start, end))])
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
from gateway_local import LocalStore

class Broken(LocalStore):
{body}

class TestBroken(StoreContract):
    @pytest.fixture
    def contract_store(self, tmp_path):
        root = tmp_path / "root"
        for key, data in CONTRACT_FILES.items():
            (root / key).parent.mkdir(parents=True, exist_ok=True)
            (root / key).write_bytes(data)
        (tmp_path / "outside.wav").write_bytes(b"secret")
        return Broken(root)
"""
    )
    result = pytester.runpytest_subprocess("-q", "-rf", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) > 0  # the suite ran
    failed = [line for line in result.outlines if line.startswith("FAILED")]
    assert failed, result.stdout.str()
    assert any(f"::{catcher}" in line for line in failed), failed
