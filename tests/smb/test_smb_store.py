"""The SMB store against a real smbd: listing, stat, byte ranges, errors, path safety, threads."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.errors import ConfigError, Forbidden, NotFound, Unavailable
from gateway.plugins import load_plugins
from gateway.sourceurl import SourceURL
from gateway.storage import CHUNK_SIZE, Store
from gateway_smb.store import SmbStore
from tests.smb.conftest import Share

QS = "flat/QSAMPLE-1700000000.12.wav"


def open_store(url: str, options: dict[str, str] | None = None) -> SmbStore:
    store = load_plugins().store_type("smb").factory(SourceURL.parse(url, options))
    assert isinstance(store, SmbStore)
    return store


@pytest.fixture
def store(share: Share) -> Iterator[SmbStore]:
    s = open_store(share.url())
    yield s
    s.close()


def test_is_a_store(store: SmbStore) -> None:
    assert isinstance(store, Store)
    store.check()


def test_list_non_recursive_has_files_and_folders(store: SmbStore, share: Share) -> None:
    entries = {e.key: e for e in store.list("freepbx/2025/03/07")}
    on_disk = sorted(p.name for p in (share.root / "freepbx/2025/03/07").iterdir())
    assert sorted(e.name for e in entries.values()) == on_disk
    for key, entry in entries.items():
        st = (share.root / "freepbx/2025/03/07" / entry.name).stat()
        assert key == f"freepbx/2025/03/07/{entry.name}"
        assert (entry.size, entry.is_dir) == (st.st_size, False)
        assert abs(entry.mtime.timestamp() - st.st_mtime) < 1
        assert entry.mtime.utcoffset() is not None
    top = {e.key: e.is_dir for e in store.list("")}
    assert top["freepbx"] is True
    assert top["flat"] is True


def test_list_recursive_has_every_file_and_no_folders(store: SmbStore, share: Share) -> None:
    keys = sorted(e.key for e in store.list("flat", recursive=True))
    expected = sorted(
        p.relative_to(share.root).as_posix()
        for p in (share.root / "flat").rglob("*")
        if p.is_file()
    )
    assert keys == expected


def test_list_big_folder_and_unicode_names(store: SmbStore, share: Share) -> None:
    names = sorted(e.name for e in store.list("many"))
    assert names == sorted(p.name for p in (share.root / "many").iterdir())
    assert len(names) == 3000
    [entry] = store.list("unicode")
    assert entry.name == "città-ünïcødé-日本-1700000000.7.wav"
    assert entry.size == 4
    assert b"".join(store.open(entry.key)) == b"RIFF"


def test_list_match_filters_files(store: SmbStore) -> None:
    names = [e.name for e in store.list("flat", recursive=True, match=lambda n: n.endswith(".txt"))]
    assert names == ["notes-1700000000.1.txt"]


def test_list_missing_folder_is_not_found(store: SmbStore) -> None:
    with pytest.raises(NotFound):
        list(store.list("freepbx/2031/01/01"))


def test_stat(store: SmbStore, share: Share) -> None:
    entry = store.stat(share.big)
    assert entry.size == len(share.bytes_of(share.big))
    assert entry.key == share.big
    assert not entry.is_dir
    with pytest.raises(NotFound):
        store.stat("freepbx/2025")  # a folder is not a file
    with pytest.raises(NotFound):
        store.stat("freepbx/nope.wav")


def test_whole_file_in_chunks(store: SmbStore, share: Share) -> None:
    chunks = list(store.open(share.big))
    assert b"".join(chunks) == share.bytes_of(share.big)
    assert all(len(c) <= CHUNK_SIZE for c in chunks)


@pytest.mark.parametrize(
    ("start", "end"),
    [(0, 2), (0, 1), (1, 2), (12345, 12346), (100, 1_000_000), (1_000_003, None),
     (CHUNK_SIZE - 1, 3 * CHUNK_SIZE + 1), (0, 10**12), (3_158_072, None)],
)  # fmt: skip
def test_byte_ranges(store: SmbStore, share: Share, start: int, end: int | None) -> None:
    data = share.bytes_of(share.big)
    assert b"".join(store.open(share.big, start, end)) == data[start:end]


def test_range_at_or_past_the_end_is_empty(store: SmbStore, share: Share) -> None:
    size = len(share.bytes_of(share.big))
    assert b"".join(store.open(share.big, size)) == b""
    assert b"".join(store.open(share.big, size + 10, size + 20)) == b""
    assert b"".join(store.open(share.big, 5, 5)) == b""


def test_open_raises_before_the_first_byte(store: SmbStore) -> None:
    with pytest.raises(NotFound):
        store.open("flat/no-such-file.wav")
    with pytest.raises(NotFound):
        store.open("flat/deep")  # a folder


def test_a_closed_download_frees_its_connection(store: SmbStore, share: Share) -> None:
    for _ in range(20):  # more than the pool has connections
        chunks = store.open(share.big)
        assert next(iter(chunks))
        chunks.close()  # type: ignore[attr-defined]
        chunks.close()  # type: ignore[attr-defined]
    assert b"".join(store.open(share.big, 0, 10)) == share.bytes_of(share.big)[:10]


@pytest.mark.parametrize(
    "key",
    ["../smb.conf", "flat/../../smb.conf", "flat\\..\\..\\smb.conf", f"{QS}::$DATA", f"{QS}:x",
     f"{QS}.", "flat./QSAMPLE-1700000000.12.wav", f"{QS} ", "CON", "flat/con.wav", "/etc/passwd"],
)  # fmt: skip
def test_path_escapes_are_refused(store: SmbStore, key: str) -> None:
    with pytest.raises(Forbidden):
        store.open(key)
    with pytest.raises(Forbidden):
        store.stat(key)
    with pytest.raises(Forbidden):
        list(store.list(key))


def test_symlink_leaving_the_share_is_not_served(share: Share, store: SmbStore) -> None:
    link = share.root / "flat" / "escape-1700000000.5.wav"
    if not link.is_symlink():
        link.symlink_to(share.server.conf)
    try:
        assert "flat/escape-1700000000.5.wav" not in {e.key for e in store.list("flat")}
        with pytest.raises((NotFound, Forbidden)):
            b"".join(store.open("flat/escape-1700000000.5.wav"))
    finally:
        link.unlink()


def test_rooted_below_the_share(share: Share) -> None:
    s = open_store(share.url("freepbx/2025"))
    try:
        s.check()
        assert {e.name for e in s.list("")} == {"03"}
        assert s.description.endswith("/recordings/freepbx/2025")
    finally:
        s.close()


def test_missing_root_folder_is_a_config_error(share: Share) -> None:
    s = open_store(share.url("no/such/folder"))
    try:
        with pytest.raises(ConfigError, match="does not exist"):
            s.check()
    finally:
        s.close()


def test_wrong_password_is_unavailable_and_never_shown(share: Share) -> None:
    wrong = "Wr0ng-Pa55word"
    s = open_store(share.server.url(password=wrong))
    try:
        with pytest.raises(Unavailable) as caught:
            s.check()
        message = str(caught.value)
        assert s.description in message
        assert "password" in message
        assert wrong not in message
        with pytest.raises(Unavailable) as caught:
            s.open(share.big)
        assert wrong not in str(caught.value)
    finally:
        s.close()


@pytest.mark.parametrize("path", ["", "/monitor"])
def test_missing_share_is_a_config_error(share: Share, path: str) -> None:
    url = share.url().replace("/recordings", "/nosuchshare" + path)
    s = open_store(url)
    try:
        with pytest.raises(ConfigError, match="no share 'nosuchshare'") as caught:
            s.check()
        assert share.server.password not in str(caught.value)
    finally:
        s.close()


def test_password_from_the_environment_and_from_a_file(
    share: Share, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAY_SMB_PASSWORD", share.server.password)
    s = open_store(share.server.url())
    try:
        s.check()
    finally:
        s.close()
    monkeypatch.setenv("GATEWAY_SMB_PASSWORD", "not-it")
    pw = tmp_path / "pw"
    pw.write_text(share.server.password + "\n")
    s = open_store(share.server.url(), {"smb_password_file": str(pw)})
    try:
        s.check()
    finally:
        s.close()


def test_encrypted_session(share: Share) -> None:
    s = open_store(share.url(query="encrypt=1"))
    try:
        assert b"".join(s.open(share.big)) == share.bytes_of(share.big)
    finally:
        s.close()


def test_concurrent_downloads_from_threads(share: Share) -> None:
    s = open_store(share.url(query="connections=3"))
    data = share.bytes_of(share.big)
    size = len(data)
    errors: list[BaseException] = []
    done: list[int] = []

    def worker(n: int) -> None:
        try:
            for i in range(3):
                start = (n * 7919 + i * 104729) % size if (n + i) % 2 else 0
                end = None if n % 3 == 0 else min(size, start + 1_000_000 + n)
                got = b"".join(s.open(share.big, start, end))
                assert hashlib.sha256(got).digest() == hashlib.sha256(data[start:end]).digest()
                keys = {e.key for e in s.list("freepbx/2025/03/07")}
                assert len(keys) == 4
            done.append(n)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors[0]
        assert sorted(done) == list(range(16))
        assert len(s._pool._slots) <= 3
    finally:
        s.close()


def _open_remote_files(store: SmbStore) -> int:
    """Files the store's pooled sessions hold open (smbprotocol's own bookkeeping)."""
    conns = [slot.connection() for slot in store._pool._slots]
    return sum(
        len(session.open_table)
        for conn in conns
        if conn is not None
        for session in conn.session_table.values()
    )


def test_closing_a_stream_frees_its_file_and_connection(share: Share) -> None:
    s = open_store(share.url(query="connections=1"))
    try:
        for _ in range(20):
            s.open(share.big).close()  # never read: the gateway closes it anyway
            part = s.open(share.big)
            assert next(part)  # reads still in flight when it is closed
            part.close()
            part.close()  # a second close does nothing
        assert [slot.users for slot in s._pool._slots] == [0]
        assert _open_remote_files(s) == 0
        assert b"".join(s.open(share.big)) == share.bytes_of(share.big)
        assert _open_remote_files(s) == 0
    finally:
        s.close()
