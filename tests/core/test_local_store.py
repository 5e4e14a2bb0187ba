"""The local-disk store on real files: listing, ranges, and keys that try to leave the root."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.errors import ConfigError, Forbidden, NotFound
from gateway.sourceurl import SourceURL
from gateway.storage import CHUNK_SIZE, ByteStream, LocalFile, Store
from gateway_local import LocalStore
from tests.conftest import run_gateway, write

DATA = bytes(range(256)) * 4096  # 1 MiB, every offset distinguishable


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    write(root / "2026/03/09/a.wav", DATA)
    write(root / "2026/03/09/b.mp3", b"mp3")
    write(root / "notes.txt", b"x")
    write(tmp_path / "outside/secret.wav", b"secret")
    return root


@pytest.fixture
def store(tree: Path) -> LocalStore:
    return LocalStore(tree)


def test_it_is_a_store_with_local_files(store: LocalStore) -> None:
    assert isinstance(store, Store)
    assert isinstance(store, LocalFile)


def test_missing_root_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        LocalStore(tmp_path / "nope").check()


def test_list_one_level_shows_files_and_folders(store: LocalStore) -> None:
    entries = {(e.key, e.is_dir) for e in store.list("")}
    assert entries == {("2026", True), ("notes.txt", False)}


def test_recursive_list_shows_every_file(store: LocalStore) -> None:
    keys = {e.key for e in store.list("", recursive=True)}
    assert keys == {"2026/03/09/a.wav", "2026/03/09/b.mp3", "notes.txt"}


def test_recursive_list_applies_the_name_filter(store: LocalStore) -> None:
    keys = {e.key for e in store.list("", recursive=True, match=lambda n: n.endswith(".wav"))}
    assert keys == {"2026/03/09/a.wav"}


def test_missing_folder_is_not_found(store: LocalStore) -> None:
    with pytest.raises(NotFound):
        list(store.list("2026/03/10"))


def test_stat_gives_size_and_refuses_folders(store: LocalStore) -> None:
    assert store.stat("2026/03/09/a.wav").size == len(DATA)
    with pytest.raises(NotFound):
        store.stat("2026/03/09")
    with pytest.raises(NotFound):
        store.stat("2026/03/09/zzz.wav")


@pytest.mark.parametrize(
    ("start", "end"), [(0, None), (0, 1), (1000, 300000), (len(DATA) - 10, None), (5, 5)]
)
def test_open_returns_exactly_the_range(store: LocalStore, start: int, end: int | None) -> None:
    got = b"".join(store.open("2026/03/09/a.wav", start, end))
    assert got == DATA[start:end]


def test_open_streams_in_chunks(store: LocalStore) -> None:
    chunks = list(store.open("2026/03/09/a.wav"))
    assert len(chunks) > 1
    assert max(len(c) for c in chunks) < len(DATA)


def test_open_of_a_missing_key_fails_before_any_byte(store: LocalStore) -> None:
    with pytest.raises(NotFound):
        store.open("2026/03/09/none.wav")


@pytest.mark.parametrize(
    "key",
    [
        "../outside/secret.wav",
        "2026/../../outside/secret.wav",
        "/etc/passwd",
        "2026/03/09/a.wav\x00.mp3",
        "2026\\03\\09\\a.wav",
        "./2026/03/09/a.wav",
        "2026//03/09/a.wav",
        "",
    ],
)
def test_keys_that_leave_the_root_are_refused(store: LocalStore, key: str) -> None:
    with pytest.raises(Forbidden):
        store.stat(key)
    with pytest.raises(Forbidden):
        store.open(key)


def test_symlinks_out_of_the_root_are_refused_and_hidden(tree: Path, store: LocalStore) -> None:
    outside = tree.parent / "outside"
    os.symlink(outside / "secret.wav", tree / "2026/03/09/link.wav")
    os.symlink(outside, tree / "2026/03/09/linkdir")
    with pytest.raises(Forbidden):
        store.open("2026/03/09/link.wav")
    with pytest.raises(Forbidden):
        store.stat("2026/03/09/linkdir/secret.wav")
    listed = {e.key for e in store.list("", recursive=True)}
    listed |= {e.key for e in store.list("2026/03/09")}
    assert not any("link" in key for key in listed)


def test_symlinks_inside_the_root_are_followed(tree: Path, store: LocalStore) -> None:
    os.symlink(tree / "2026/03/09/a.wav", tree / "alias.wav")
    assert b"".join(store.open("alias.wav", 0, 10)) == DATA[:10]
    assert "alias.wav" in {e.key for e in store.list("")}


def test_a_root_that_is_itself_a_symlink_works(tree: Path, tmp_path: Path) -> None:
    os.symlink(tree, tmp_path / "rootlink")
    store = LocalStore(tmp_path / "rootlink")
    assert store.stat("2026/03/09/b.mp3").size == 3


def test_concurrent_reads_return_the_right_bytes(store: LocalStore) -> None:
    errors: list[str] = []

    def read(offset: int) -> None:
        got = b"".join(store.open("2026/03/09/a.wav", offset, offset + 70000))
        if got != DATA[offset : offset + 70000]:
            errors.append(f"wrong bytes at {offset}")

    threads = [threading.Thread(target=read, args=(i * 9973,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.mark.parametrize("form", ["file:{}", "file://{}", "file://localhost{}"])
def test_the_factory_reads_file_urls(tree: Path, form: str) -> None:
    store = LocalStore.from_url(SourceURL.parse(form.format(tree), {"smb_timeout": "1"}))
    assert store.root == tree.resolve()
    assert store.description == f"file:{tree.resolve()}"


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("file://nas/share", {}, "must be local"),
        ("file:", {}, "needs a folder"),
        ("file:/var/rec?colour=blue", {}, "unknown file: option 'colour'"),
        ("file:/var/rec", {"file_colour": "blue"}, "unknown file: option 'file_colour'"),
    ],
)
def test_the_factory_refuses_what_it_cannot_use(
    url: str, options: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        LocalStore.from_url(SourceURL.parse(url, options))


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_closing_a_stream_closes_its_file(store: LocalStore) -> None:
    before = _open_fds()
    unread = store.open("2026/03/09/a.wav")
    assert isinstance(unread, ByteStream)
    assert len(_open_fds() - before) == 1
    unread.close()
    unread.close()  # twice is fine
    part = store.open("2026/03/09/a.wav", 10)
    assert next(part) == DATA[10 : 10 + CHUNK_SIZE]
    part.close()
    assert list(part) == []  # a closed stream is an exhausted one
    assert _open_fds() - before == set()


def test_entries_reached_through_links_name_where_they_really_lie(
    tree: Path, store: LocalStore
) -> None:
    os.symlink(tree / "2026/03/09/a.wav", tree / "alias.wav")
    os.symlink(tree / "2026/03/09", tree / "2026/03/10")
    assert store.stat("2026/03/09/a.wav").real_key is None
    assert store.stat("alias.wav").real_key == "2026/03/09/a.wav"
    assert store.stat("2026/03/10/a.wav").real_key == "2026/03/09/a.wav"
    listed = {e.key: e.real_key for e in store.list("", recursive=True)}
    assert listed["alias.wav"] == "2026/03/09/a.wav"
    assert listed["2026/03/09/a.wav"] is None
    through_folder = {e.key: e.real_key for e in store.list("2026/03/10")}
    assert through_folder == {
        "2026/03/10/a.wav": "2026/03/09/a.wav",
        "2026/03/10/b.mp3": ("2026/03/09/b.mp3"),
    }


def test_open_local_opens_only_what_really_lies_at_the_key(tree: Path, store: LocalStore) -> None:
    os.symlink(tree / "2026/03/09/a.wav", tree / "alias.wav")
    with pytest.raises(Forbidden):
        store.open_local("alias.wav")  # callers pass the real key (Entry.real_key)
    with store.open_local("2026/03/09/a.wav") as handle:
        assert handle.read(10) == DATA[:10]
    assert b"".join(store.open("alias.wav", 0, 10)) == DATA[:10]  # open still follows it


def _answers_quickly(action: Callable[[], object]) -> BaseException | None:
    """Run ``action`` on a thread and return what it raised; fail if it blocks (as opening a
    FIFO for reading does until a writer comes)."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "blocked"
    return raised[0] if raised else None


def test_fifos_and_devices_are_never_opened_to_block(tree: Path, store: LocalStore) -> None:
    os.mkfifo(tree / "2026/03/09/fifo.wav")
    os.symlink(tree / "2026/03/09/fifo.wav", tree / "to-fifo.wav")
    os.symlink("/dev/zero", tree / "zero.wav")
    for key in ("2026/03/09/fifo.wav", "to-fifo.wav"):
        for method in (store.open, store.open_local, store.stat):
            raised = _answers_quickly(functools.partial(method, key))
            # open_local refuses a link before it looks at what the link leads to
            refused = Forbidden if method == store.open_local and key == "to-fifo.wav" else NotFound
            assert isinstance(raised, refused), (method, key, raised)
    assert isinstance(_answers_quickly(functools.partial(store.open, "zero.wav")), Forbidden)
    assert {e.key for e in store.list("", recursive=True)} == {
        "2026/03/09/a.wav",
        "2026/03/09/b.mp3",
        "notes.txt",
    }


def test_symlink_loops_are_not_found(tree: Path, store: LocalStore) -> None:
    os.symlink("loop.wav", tree / "loop.wav")
    os.symlink("08", tree / "2026/03/08")
    for key in ("loop.wav", "2026/03/08/a.wav"):
        with pytest.raises(NotFound):
            store.stat(key)
        with pytest.raises(NotFound):
            store.open(key)
    with pytest.raises(NotFound):
        list(store.list("2026/03/08"))
    assert "loop.wav" not in {e.key for e in store.list("")}


def test_a_looping_root_is_a_configuration_error(tmp_path: Path) -> None:
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    done = run_gateway("search", "--path", str(tmp_path / "a"), "--callid", "1773047700.1")
    assert done.returncode == 2, done.stderr
    assert b"cannot be used: Too many levels of symbolic links" in done.stderr
    assert b"Traceback" not in done.stderr
    assert b"internal error" not in done.stderr
