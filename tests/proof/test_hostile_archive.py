"""Issue #14: an archive that holds hostile entries neither leaks, hangs nor fails a search.

Each test builds the archive on real files and talks to a real ``gateway serve`` over HTTP:

- a symlink in one tenant's folder (to a file, or a whole day folder) of another tenant is
  not listed for the first tenant, and a link for it opens nothing (the tenant check applies
  where the file really lies); a symlink swapped in after the check is refused at the open;
- a FIFO raced in at a key never blocks a worker: every request is answered;
- names that links cannot carry (not UTF-8, backslashes, control characters) and symlink
  loops are skipped with a log line, never a 500, never hiding the recording next to them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from gateway.builtin_layouts import FUSIONPBX
from gateway.errors import Forbidden
from gateway.signing import LinkSigner
from gateway.sources import StoreSource
from gateway_local import LocalStore
from tests.conftest import wait_until
from tests.tenants.conftest import LINK_KEY, SECRETS, write_tenants
from tests.web.conftest import Gateway

A, B = "tenant1.example", "tenant2.example"
ADMIN = "admin-token-hostile-7c2d"
DAY = "2026/Mar/09"
B_BYTES = b"RIFF" + b"tenant2-secret-audio" * 50
A_BYTES = b"RIFF" + b"tenant1-own-audio" * 50
# Call ids (FusionPBX files are named <uuid>.wav; any name holding the id as a token counts).
LEGIT_A = "1773054150.101"
B_CALL = "1773054150.202"
LINKED_FILE = "1773054150.303"
LINKED_DAY = "1773054150.404"
OWN_ALIAS = "1773054150.505"


def day_folder(root: Path, tenant: str, day: str = DAY) -> Path:
    folder = root / tenant / "archive" / day
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Gateway]]:
    """Two tenants (FusionPBX layout); tenant1's folders hold links into tenant2's."""
    base = tmp_path_factory.mktemp("hostile-tenants")
    root = base / "archive"
    a, b = day_folder(root, A), day_folder(root, B)
    (a / f"{LEGIT_A}.wav").write_bytes(A_BYTES)
    (b / f"{B_CALL}.wav").write_bytes(B_BYTES)
    (b / f"b-{LINKED_FILE}.wav").write_bytes(B_BYTES)
    os.symlink(b / f"b-{LINKED_FILE}.wav", a / f"{LINKED_FILE}.wav")  # a file symlink
    b8 = day_folder(root, B, "2026/Mar/08")
    (b8 / f"{LINKED_DAY}.wav").write_bytes(B_BYTES)
    os.symlink(b8, root / A / "archive" / "2026/Mar/08")  # a whole day folder
    os.symlink(a / f"{LEGIT_A}.wav", a / f"alias-{OWN_ALIAS}.wav")  # a link within tenant1
    # a tenant folder whose name no link can carry, holding a call tenant2 also has
    day_folder(root, "bad\\name", DAY).joinpath(f"{B_CALL}-x.wav").write_bytes(B_BYTES)
    (base / "keys").write_text(LINK_KEY + "\n")
    tenants = write_tenants(base / "tenants.json", SECRETS)
    args = ["--path", str(root), "--layout", "fusionpbx", "--timezone", "UTC"]
    args += ["--bind-to", "127.0.0.1:0", "--tenants", str(tenants), "--token", ADMIN]
    args += ["--link-key-file", str(base / "keys")]
    gw = Gateway(args, base / "gateway.log")
    yield root, gw
    gw.stop()


def tenant_search(gw: Gateway, tenant: str, callid: str, when: str) -> requests.Response:
    fields = {"tenant": tenant, "token": SECRETS[tenant], "callid": callid, "timestamp": when}
    return requests.post(f"{gw.url}/search/", data=fields, timeout=30)


def files(answer: requests.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    assert answer.json().get("errors", []) == [], answer.text
    found: list[dict[str, Any]] = answer.json()["files"]
    return found


@pytest.mark.parametrize(
    ("callid", "when", "key"),
    [
        (LINKED_FILE, "2026-03-09.10:00:00", f"{A}/archive/{DAY}/{LINKED_FILE}.wav"),
        (LINKED_DAY, "2026-03-08.10:00:00", f"{A}/archive/2026/Mar/08/{LINKED_DAY}.wav"),
    ],
    ids=["file-symlink", "folder-symlink"],
)
def test_a_link_into_another_tenants_folder_is_neither_listed_nor_served(
    hosted: tuple[Path, Gateway], callid: str, when: str, key: str
) -> None:
    root, gw = hosted
    assert (root / key).read_bytes() == B_BYTES  # the link really reaches tenant2's file
    assert files(tenant_search(gw, A, callid, when)) == []
    # A link for it, as if issued before the link was made: the download checks again.
    signer = LinkSigner([LINK_KEY])
    signed, _ = signer.sign(f"file:{root}", key, 60, tenant=A, name="call.wav")
    for method in (requests.get, requests.head):
        answer = method(f"{gw.url}/files/{signed}/call.wav", timeout=10)
        assert answer.status_code == 403
        assert b"tenant2" not in answer.content
    assert f"{key!r} leads to" in gw.log()


def test_links_within_a_tenants_own_folders_still_work(hosted: tuple[Path, Gateway]) -> None:
    _, gw = hosted
    for callid in (LEGIT_A, OWN_ALIAS):
        (found,) = files(tenant_search(gw, A, callid, "2026-03-09.10:00:00"))
        assert requests.get(found["url"], timeout=10).content == A_BYTES
    (found,) = files(tenant_search(gw, B, B_CALL, "2026-03-09.10:00:00"))
    assert requests.get(found["url"], timeout=10).content == B_BYTES


def test_a_tenant_folder_links_cannot_name_hides_no_other(hosted: tuple[Path, Gateway]) -> None:
    _, gw = hosted
    fields = {"token": ADMIN, "callid": B_CALL, "timestamp": "2026-03-09.10:00:00"}
    answer = requests.post(f"{gw.url}/search/", data=fields, timeout=30)
    assert [f["name"] for f in files(answer)] == [f"{B_CALL}.wav"]


def test_a_symlink_swapped_in_after_the_check_is_refused_at_the_open(tmp_path: Path) -> None:
    a, b = day_folder(tmp_path, A), day_folder(tmp_path, B)
    (a / f"{LEGIT_A}.wav").write_bytes(A_BYTES)
    (b / f"{B_CALL}.wav").write_bytes(B_BYTES)
    source = StoreSource("local", LocalStore(tmp_path), FUSIONPBX)
    key = f"{A}/archive/{DAY}/{LEGIT_A}.wav"
    delivery = source.file(key, tenant=A)  # checked: tenant1's own regular file
    os.replace(a / f"{LEGIT_A}.wav", a / "moved.wav")
    os.symlink(b / f"{B_CALL}.wav", a / f"{LEGIT_A}.wav")  # ...then swapped for a link
    with pytest.raises(Forbidden):
        delivery.open_local()  # what is opened is checked again: a link, not what was checked


# -- FIFOs ---------------------------------------------------------------------------------

CALL = "1773054150.777"


@pytest.fixture
def flat(tmp_path: Path) -> Iterator[tuple[Path, Gateway]]:
    """A FreePBX-style archive served with 4 worker threads (each hang would take one)."""
    root = tmp_path / "archive"
    folder = root / "2026/03/09"
    folder.mkdir(parents=True)
    (folder / f"in-{CALL}.wav").write_bytes(A_BYTES)
    args = ["--path", str(root), "--layout", "freepbx", "--timezone", "UTC", "--threads", "4"]
    args += ["--bind-to", "127.0.0.1:0", "--token", ADMIN, "--audit-log", str(tmp_path / "a")]
    gw = Gateway(args, tmp_path / "gateway.log")
    yield folder, gw
    gw.stop()


def admin_search(gw: Gateway, callid: str, when: str = "2026-03-09.10:00:00") -> requests.Response:
    fields = {"token": ADMIN, "callid": callid, "timestamp": when}
    return requests.post(f"{gw.url}/search/", data=fields, timeout=10)


def test_fifos_raced_in_at_a_key_never_hang_a_worker(flat: tuple[Path, Gateway]) -> None:
    folder, gw = flat
    key = folder / f"in-{CALL}.wav"
    (url,) = [f["url"] for f in files(admin_search(gw, CALL))]
    os.link(key, folder / "keep.wav")
    os.mkfifo(folder / "keep.fifo")
    stop = threading.Event()

    def race() -> None:  # the key is a regular file, then a FIFO, then a file... (atomically)
        while not stop.is_set():
            for keep in ("keep.fifo", "keep.wav"):
                os.link(folder / keep, folder / "swap")
                os.replace(folder / "swap", key)

    def client(n: int) -> list[int]:
        statuses = []
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            answer = requests.get(url, headers={"Range": "bytes=0-99"}, timeout=10)
            statuses.append(answer.status_code)
            if n == 0:  # the duration probe opens the file too
                statuses.append(admin_search(gw, CALL).status_code)
        return statuses

    racer = threading.Thread(target=race)
    racer.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            statuses = [s for got in pool.map(client, range(8)) for s in got]
    finally:
        stop.set()
        racer.join()
    assert set(statuses) <= {200, 206, 404}, sorted(set(statuses))
    assert {206, 404} <= set(statuses)  # both were met: the race did happen
    os.replace(folder / "keep.fifo", key)
    started = time.monotonic()
    for _ in range(8):  # more than the 4 workers: none of them is stuck
        assert requests.get(url, timeout=10).status_code == 404
    assert time.monotonic() - started < 5
    os.replace(folder / "keep.wav", key)
    assert requests.get(url, timeout=10).content == A_BYTES
    assert requests.get(f"{gw.url}/healthz", timeout=10).status_code == 200


# -- names links cannot carry, symlink loops -------------------------------------------------


def test_hostile_names_are_skipped_and_their_neighbours_found(
    flat: tuple[Path, Gateway], tmp_path: Path
) -> None:
    folder, gw = flat
    legit = folder / f"{CALL}-legit.wav"
    legit.write_bytes(A_BYTES)
    hostile = [b"caf\xe9-" + CALL.encode() + b".wav", b"a\\b-" + CALL.encode() + b".wav"]
    hostile += [b"x\x01y-" + CALL.encode() + b".wav", b"x\ny-" + CALL.encode() + b".wav"]
    for name in hostile:
        with open(os.path.join(os.fsencode(folder), name), "wb") as f:
            f.write(B_BYTES)
    os.symlink(f"loop-{CALL}.wav", folder / f"loop-{CALL}.wav")
    found = files(admin_search(gw, CALL))
    assert sorted(f["name"] for f in found) == [f"{CALL}-legit.wav", f"in-{CALL}.wav"]
    for f in found:
        assert requests.get(f["url"], timeout=10).content == A_BYTES
    skipped = [line for line in gw.log().splitlines() if "not listed" in line]
    assert len(skipped) == len(hostile)  # one line each for this search (the loop: none)

    def audited() -> list[tuple[str, int]]:  # written once each response is finished
        lines = (tmp_path / "a").read_text().splitlines()
        return [(e["event"], e["status"]) for e in map(json.loads, lines)]

    # each line is written by its own worker thread: in no set order
    want = sorted([("search", 200), ("download", 200), ("download", 200)])
    wait_until(
        lambda: sorted(audited()) == want, what=lambda: f"audit lines {want}, not {audited()}"
    )


def test_a_looping_day_folder_fails_no_search(flat: tuple[Path, Gateway]) -> None:
    folder, gw = flat
    os.symlink("08", folder.parent / "08")  # 2026/03/08 -> itself
    # just after midnight: the look-back lists the day before too
    (found,) = files(admin_search(gw, CALL, "2026-03-09.00:10:00"))
    assert found["name"] == f"in-{CALL}.wav"


def test_a_link_whose_file_became_a_loop_is_not_found(flat: tuple[Path, Gateway]) -> None:
    folder, gw = flat
    (url,) = [f["url"] for f in files(admin_search(gw, CALL))]
    os.replace(folder / f"in-{CALL}.wav", folder / "away.wav")
    os.symlink(f"in-{CALL}.wav", folder / f"in-{CALL}.wav")
    assert requests.get(url, timeout=10).status_code == 404
    assert requests.get(f"{gw.url}/healthz", timeout=10).status_code == 200
