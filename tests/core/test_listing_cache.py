"""Kept folder listings (gateway_local.listing): searches never see a folder as it was.

Folders here are real; the clock the cache compares folder times with is injected, so that
"this folder settled long ago" and "this folder changed a moment ago" are both tested without
waiting. One test waits for real, to prove the whole store with the real clock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.sourceurl import SourceURL
from gateway_local import LocalStore
from gateway_local.listing import SETTLED_NS, Listing, ListingCache
from tests.conftest import write


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The folders really read with ``os.scandir`` (the cache's own calls, counted)."""
    seen: list[str] = []
    real = os.scandir

    def counting(path: str) -> Iterator[os.DirEntry[str]]:
        seen.append(str(path))
        return real(path)

    monkeypatch.setattr("gateway_local.listing.os.scandir", counting)
    return seen


def later_clock(folder: Path, seconds: float) -> ListingCache:
    """A cache whose clock is ``seconds`` after the folder's last change."""
    changed = max(folder.stat().st_mtime_ns, folder.stat().st_ctime_ns)
    return ListingCache(clock=lambda: changed + int(seconds * 1e9))


def test_a_settled_folder_is_read_once(tmp_path: Path, reads: list[str]) -> None:
    write(tmp_path / "a.wav")
    cache = later_clock(tmp_path, 10)
    assert cache.listing(str(tmp_path)).others == ("a.wav",)
    assert cache.listing(str(tmp_path)).others == ("a.wav",)
    assert reads == [str(tmp_path)]


def test_a_folder_changed_within_the_margin_is_read_every_time(
    tmp_path: Path, reads: list[str]
) -> None:
    # Its next change could carry the same time stamp as the last one: never kept.
    write(tmp_path / "a.wav")
    cache = later_clock(tmp_path, SETTLED_NS / 1e9 - 0.5)
    cache.listing(str(tmp_path))
    cache.listing(str(tmp_path))
    assert reads == [str(tmp_path)] * 2


@pytest.mark.parametrize("change", ["add", "remove", "rename", "replace the folder"])
def test_any_change_of_a_kept_folder_is_seen(tmp_path: Path, reads: list[str], change: str) -> None:
    folder = tmp_path / "day"
    write(folder / "a.wav")
    cache = later_clock(folder, 10)
    cache.listing(str(folder))
    if change == "add":
        write(folder / "b.wav")
    elif change == "remove":
        (folder / "a.wav").unlink()
    elif change == "rename":
        (folder / "a.wav").rename(folder / "c.wav")
    else:  # another folder moved in its place, times copied (rsync -a, a restore)
        other = tmp_path / "other"
        write(other / "d.wav")
        times = folder.stat()
        os.utime(other, ns=(times.st_atime_ns, times.st_mtime_ns))
        folder.rename(tmp_path / "old")
        other.rename(folder)
    expected = {"add": {"a.wav", "b.wav"}, "remove": set(), "rename": {"c.wav"}}
    assert set(cache.listing(str(folder)).others) == expected.get(change, {"d.wav"})
    assert len(reads) == 2


def test_a_folder_whose_times_are_set_back_is_read_again(tmp_path: Path, reads: list[str]) -> None:
    write(tmp_path / "a.wav")
    cache = later_clock(tmp_path, 10)
    cache.listing(str(tmp_path))
    before = tmp_path.stat()
    write(tmp_path / "b.wav")
    os.utime(tmp_path, ns=(before.st_atime_ns, before.st_mtime_ns))  # as an archiver would
    assert set(cache.listing(str(tmp_path)).others) == {"a.wav", "b.wav"}


def test_memory_is_bounded_by_the_names_kept(tmp_path: Path, reads: list[str]) -> None:
    for day in ("d1", "d2", "d3"):
        for n in range(4):
            write(tmp_path / day / f"{n}.wav")
    big = tmp_path / "big"
    for n in range(20):
        write(big / f"{n}.wav")
    changed = max(max(p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in tmp_path.iterdir())
    cache = ListingCache(max_names=10, clock=lambda: changed + 10**10)
    for folder in ("big", "big", "d1", "d2", "d1", "d3", "d1", "d2"):
        cache.listing(str(tmp_path / folder))
    # big (21 names) is never kept; d1 and d2 (5 names each) fit, d3 evicts the least used
    assert [Path(r).name for r in reads] == ["big", "big", "d1", "d2", "d3", "d2"]


def test_the_store_finds_a_file_added_to_a_folder_it_keeps(
    tmp_path: Path, reads: list[str]
) -> None:
    """The real clock and the real store: wait for the folder to settle, search, add, search;
    with ``listing_cache=off`` the same folder is read at every search."""
    day = "2026/03/09"
    write(tmp_path / day / "in-1-2-1773047700.1.wav")
    kept = LocalStore(tmp_path)
    uncached = LocalStore.from_url(SourceURL.parse(f"file:{tmp_path}?listing_cache=off"))
    time.sleep(SETTLED_NS / 1e9 + 0.2)
    for store in (kept, uncached, kept, uncached):
        assert [e.name for e in store.list(day)] == ["in-1-2-1773047700.1.wav"]
    assert len(reads) == 3  # the kept store read the folder once
    write(tmp_path / day / "in-1-2-1773047700.2.wav", b"RIFF" + b"\0" * 100)
    entries = {e.name: e.size for e in kept.list(day)}
    assert entries == {"in-1-2-1773047700.1.wav": 80, "in-1-2-1773047700.2.wav": 104}
    (tmp_path / day / "in-1-2-1773047700.1.wav").unlink()
    assert [e.name for e in kept.list(day)] == ["in-1-2-1773047700.2.wav"]
    with pytest.raises(ConfigError):
        LocalStore.from_url(SourceURL.parse(f"file:{tmp_path}?listing_cache=maybe"))


def test_sizes_and_times_are_read_fresh(tmp_path: Path) -> None:
    path = write(tmp_path / "a.wav", b"RIFF")
    store = LocalStore(tmp_path)
    assert [e.size for e in store.list("")] == [4]
    with path.open("ab") as grow:  # a recording still being written
        grow.write(b"\0" * 96)
    assert [e.size for e in store.list("")] == [100]


def test_names_holding_a_call_id_are_found_in_one_pass() -> None:
    names = ("in-1-2-1773047700.1.wav", "x.txt", "OUT-A1B2.wav", "a1b2-in.WAV", "in-1773047700.1")
    listing = Listing((), names, frozenset())
    assert listing.holding("1773047700.1") == [names[0], names[4]]  # the last name too
    assert listing.holding("a1b2") == [names[2], names[3]]  # letters: case-folded
    assert listing.holding("nothing") == []


def test_a_name_that_case_folding_lengthens_does_not_shift_the_others() -> None:
    names = ("Straße-1773047700.1.wav", "in-1773047700.2.wav", "STRASSE-1773047700.3.wav")
    listing = Listing((), names, frozenset())
    assert listing.holding("1773047700.2") == [names[1]]
    assert listing.holding("strasse") == [names[0], names[2]]
