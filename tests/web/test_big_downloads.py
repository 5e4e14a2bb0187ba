"""Local files far larger than a socket's buffer, over real HTTP: every byte in its place for
whole files, ranges, a reader that starts late and clients at once (the server sends them with
sendfile, in many calls that each take what the socket has room for), and the audit log still
counts the bytes sent."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.web.conftest import Archive, with_big_file

# not a multiple of any buffer size, and far more than a loopback socket holds (4 MiB)
WORDS = 6 * 1024 * 1024 + 3


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Archive, bytes]:
    return with_big_file(tmp_path_factory.mktemp("big"), WORDS)


def test_whole_file_and_ranges_and_the_audit_count(
    start_gateway: Any, big: tuple[Archive, bytes], tmp_path: Path
) -> None:
    archive, content = big
    audit = tmp_path / "audit.jsonl"
    gw = start_gateway("--audit-log", str(audit), root=archive)
    [link] = gw.links(archive.call_with(1))
    whole = requests.get(link["url"], timeout=60)
    assert whole.status_code == 200
    assert whole.content == content
    size = len(content)
    for header, want in [
        ("bytes=1000001-20000000", content[1000001:20000001]),
        (f"bytes={size - 5_000_000}-", content[-5_000_000:]),
        ("bytes=-7", content[-7:]),
    ]:
        part = requests.get(link["url"], headers={"Range": header}, timeout=60)
        assert part.status_code == 206
        assert part.content == want
    gw.stop()
    downloads = [
        json.loads(line)
        for line in audit.read_text().splitlines()
        if json.loads(line)["event"] == "download"
    ]
    assert [d["bytes"] for d in downloads] == [size, 19_000_000, 5_000_000, 7]


def test_a_late_reader_and_clients_at_once(start_gateway: Any, big: tuple[Archive, bytes]) -> None:
    archive, content = big
    gw = start_gateway(root=archive)
    [link] = gw.links(archive.call_with(1))
    got: dict[int, bytes] = {}

    def fetch(n: int, wait: float) -> None:
        with requests.get(link["url"], stream=True, timeout=60) as answer:
            time.sleep(wait)  # the socket fills up: the server must wait and go on
            got[n] = b"".join(answer.iter_content(64 * 1024))

    clients = [threading.Thread(target=fetch, args=(n, 1.0 if n == 0 else 0)) for n in range(8)]
    for c in clients:
        c.start()
    for c in clients:
        c.join()
    assert sorted(got) == list(range(8))
    for body in got.values():
        assert body == content
