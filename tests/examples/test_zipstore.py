"""The third-party example plugin, installed as its own distribution, keeps the contract."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
import requests

from gateway.errors import ConfigError
from gateway.sourceurl import SourceURL
from gateway.storage import CHUNK_SIZE, ByteStream
from gateway.testing import BIG_KEY, CONTRACT_FILES, StoreContract
from tests.conftest import run_gateway
from tests.web.conftest import Gateway

gateway_zipstore = pytest.importorskip(
    "gateway_zipstore", reason="pip install -e examples/gateway-zipstore (scripts/install-deps.sh)"
)


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for key, data in files.items():
            # the big member deflated, the others stored: both kinds must serve ranges
            method = zipfile.ZIP_DEFLATED if len(data) > 1000 else zipfile.ZIP_STORED
            z.writestr(key, data, compress_type=method)
        z.writestr("../outside.wav", b"zip-slip")  # a hostile member name
    return path


class TestZipStore(StoreContract):
    @pytest.fixture
    def contract_store(self, tmp_path: Path) -> object:
        return gateway_zipstore.ZipStore(make_zip(tmp_path / "calls.zip", CONTRACT_FILES))

    @pytest.fixture
    def contract_missing_root_store(self, tmp_path: Path) -> object:
        return gateway_zipstore.ZipStore(tmp_path / "no-such-archive.zip")


def test_the_factory_reads_its_url_and_refuses_options(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "calls.zip", CONTRACT_FILES)
    store = gateway_zipstore.ZipStore.from_url(SourceURL.parse(f"zip:{archive}"))
    assert store.description == f"zip:{archive.resolve()}"
    with pytest.raises(ConfigError, match="needs an archive"):
        gateway_zipstore.ZipStore.from_url(SourceURL.parse("zip:"))
    with pytest.raises(ConfigError, match="unknown zip: option 'zip_colour'"):
        gateway_zipstore.ZipStore.from_url(SourceURL.parse(f"zip:{archive}", {"zip_colour": "x"}))


def test_closing_a_stream_closes_the_archive(tmp_path: Path) -> None:
    store = gateway_zipstore.ZipStore(make_zip(tmp_path / "calls.zip", CONTRACT_FILES))
    store.check()
    before = set(os.listdir("/proc/self/fd"))
    unread = store.open(BIG_KEY)
    assert isinstance(unread, ByteStream)
    started = store.open(BIG_KEY, 100)
    assert next(started) == CONTRACT_FILES[BIG_KEY][100 : 100 + CHUNK_SIZE]
    unread.close()
    started.close()
    started.close()  # twice is fine
    assert list(started) == []  # a closed stream is an exhausted one
    assert set(os.listdir("/proc/self/fd")) - before == set()


def test_it_is_found_through_its_entry_point() -> None:
    done = run_gateway("plugins")
    assert b"gateway-zipstore [zipstore]" in done.stdout


def test_search_and_get_through_the_command_line(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "2026-03.zip", CONTRACT_FILES)
    done = run_gateway("search", "--path", f"zip:{archive}", "--layout", "freepbx",
                       "--callid", "1773047410.1", "--timestamp", "2026-03-09T10:10:10Z",
                       "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    [found] = json.loads(done.stdout)
    assert found["key"] == "2026/03/09/in-100-200-20260309-101010-1773047410.1.wav"
    out = tmp_path / "call.wav"
    done = run_gateway("get", "--path", f"zip:{archive}", "--key", found["key"], "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == CONTRACT_FILES[found["key"]]


def test_searched_and_streamed_through_a_real_gateway(tmp_path: Path) -> None:
    archive = make_zip(tmp_path / "2026-03.zip", CONTRACT_FILES)
    gw = Gateway(
        [
            "--path",
            f"zip:{archive}",
            "--layout",
            "freepbx",
            "--timezone",
            "UTC",
            "--bind-to",
            "127.0.0.1:0",
            "--token",
            "zip-example-token",
        ],
        tmp_path / "gateway.log",
    )
    try:
        answer = requests.post(
            f"{gw.url}/search/",
            data={"token": "zip-example-token", "callid": "1773047410.1", "ts": "1773051010"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        [found] = answer.json()["files"]
        want = CONTRACT_FILES[BIG_KEY]
        assert requests.get(found["url"], timeout=30).content == want
        part = requests.get(found["url"], headers={"Range": "bytes=5000-5999"}, timeout=30)
        assert part.status_code == 206
        assert part.content == want[5000:6000]
    finally:
        gw.stop()
