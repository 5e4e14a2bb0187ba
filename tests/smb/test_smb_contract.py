"""The SMB store runs the store contract (``gateway.testing.StoreContract``) on a real smbd.

Its own smbd and share: the contract root is a folder of the share holding exactly
``CONTRACT_FILES``; next to the share (outside what smbd exports) lies a canary file, and the
root holds symlinks to it and to its folder, which smbd must neither list nor follow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gateway.testing import CANARY, CONTRACT_FILES, StoreContract
from gateway_smb.store import SmbStore
from tests.conftest import free_port
from tests.smb.server import SambaServer
from tests.smb.test_smb_store import open_store

ROOT = "contract"
LINKS = ("link-out.wav", "link-dir", "2026/03/09/rel-out.wav")


@pytest.fixture(scope="module")
def contract_server(
    samba_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SambaServer]:
    server = SambaServer(tmp_path_factory.mktemp("smbd-contract"))
    root = server.share_dir / ROOT
    for key, data in CONTRACT_FILES.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    outside = server.base / "outside"
    outside.mkdir()
    (outside / "outside.wav").write_bytes(CANARY)
    (server.share_dir / "outside.wav").write_bytes(CANARY)  # in the share, above the root
    os.symlink(outside / "outside.wav", root / LINKS[0])
    os.symlink(outside, root / LINKS[1])
    os.symlink(Path("../../../../../outside/outside.wav"), root / LINKS[2])
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TestSmbStore(StoreContract):
    @pytest.fixture
    def contract_store(self, contract_server: SambaServer) -> Iterator[SmbStore]:
        store = open_store(contract_server.url(ROOT, password=contract_server.password))
        yield store
        store.close()

    @pytest.fixture
    def contract_secrets(self, contract_server: SambaServer) -> Sequence[str]:
        return (contract_server.password,)

    @pytest.fixture
    def contract_escaping_links(self) -> Sequence[str]:
        return LINKS

    @pytest.fixture
    def contract_missing_root_store(self, contract_server: SambaServer) -> Iterator[SmbStore]:
        store = open_store(contract_server.url("no-such-folder", password=contract_server.password))
        yield store
        store.close()

    @pytest.fixture(params=["server-down", "wrong-password"])
    def contract_unreachable_store(
        self, request: pytest.FixtureRequest, contract_server: SambaServer
    ) -> Iterator[SmbStore]:
        if request.param == "server-down":  # nothing listens on that port
            url = contract_server.url(ROOT, password=contract_server.password, query="timeout=2")
            url = url.replace(f":{contract_server.port}/", f":{free_port()}/")
        else:
            wrong = "wrong-" + contract_server.password[::-1]
            url = contract_server.url(ROOT, password=wrong, query="timeout=2")
        store = open_store(url)
        yield store
        store.close()
