"""The local store keeps the whole store contract with escaping symlinks in its root.

tests/core runs the contract on a plain folder; here the root also holds symlinks to a file
and a folder outside it (holding ``CANARY``), which listings must hide and every method must
refuse. A store that follows them is caught by the contract's traversal test.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from gateway.testing import CANARY, CONTRACT_FILES, StoreContract
from gateway_local import LocalStore

LINKS = ("out.wav", "out-dir", "2026/03/09/rel-out.wav")


def populate(base: Path) -> Path:
    root = base / "root"
    for key, data in CONTRACT_FILES.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    (base / "outside.wav").write_bytes(CANARY)
    (base / "outside").mkdir()
    (base / "outside" / "outside.wav").write_bytes(CANARY)
    os.symlink(base / "outside.wav", root / LINKS[0])
    os.symlink(base / "outside", root / LINKS[1])
    os.symlink(Path("../../../../outside.wav"), root / LINKS[2])
    return root


class TestLocalStoreWithLinks(StoreContract):
    @pytest.fixture
    def contract_store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(populate(tmp_path))

    @pytest.fixture
    def contract_escaping_links(self) -> Sequence[str]:
        return LINKS


class FollowsLinks(LocalStore):
    """Broken on purpose: checks the key's text but not where its symlinks lead."""

    def _path(self, key: str, *, allow_root: bool = False) -> Path:
        from gateway.storage import check_key

        return self.root.joinpath(*check_key(key, allow_root=allow_root))

    def _inside(self, real: str) -> bool:
        return True


def test_the_traversal_test_catches_a_store_that_follows_links(tmp_path: Path) -> None:
    store = FollowsLinks(populate(tmp_path))
    with pytest.raises(AssertionError, match="bytes from outside the root"):
        StoreContract().test_traversal_corpus_never_leaves_the_root(store, LINKS)
