"""Folder listings kept between searches, used only while the folder is provably unchanged.

A search lists the same day folder again and again (every supervisor's click on a call of the
day); reading its entries once and then only ``stat``-ing the folder is what makes a search
cost about as much as the web framework around it. Only names are kept: sizes and times are
read fresh, at each search, for the few files that match.

Why a kept listing is never stale. Creating, removing or renaming an entry updates the
folder's change time (``st_ctime``, POSIX; unlike the modification time no program can set it
back) to the current time. A listing is kept only when

1. the folder's identity and times (device, inode, ``st_mtime_ns``, ``st_ctime_ns``) were the
   same before and after reading it: nothing changed while it was read;
2. its change time lies more than ``SETTLED_NS`` before the moment the reading began, a margin
   far above any local file system's timestamp granularity: a later change, even within the
   same clock tick as the last one, would give a change time that differs from the kept one.

It is used only while a fresh ``stat`` of the folder gives the same identity and times. A
folder modified within the last seconds is simply read again until it settles. What this
relies on is the file server's clock agreeing with ours: a network mount from a server whose
clock is off by more than the margin can defeat rule 2, which is why the cache can be turned
off (``--option file_listing_cache=off``).
"""

from __future__ import annotations

import functools
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import cachetools

SETTLED_NS = 2_000_000_000
"""How long before a reading the folder's last change must lie for the reading to be kept."""
MAX_NAMES = 100_000
"""Names kept over all folders (about 15 MB for FreePBX-style names): 100 busy days."""


@dataclass(frozen=True)
class Listing:
    """The entries of one folder, by kind (``DirEntry`` tells the kind without a ``stat``)."""

    folders: tuple[str, ...]
    """Sub-folders (not symlinks to folders)."""
    others: tuple[str, ...]
    """Everything else: files, symlinks, and what the store will skip (FIFOs, sockets)."""
    links: frozenset[str]
    """Which of ``others`` are symlinks (resolved at each use: their target may change)."""

    def holding(self, folded: str) -> list[str]:
        """The names of ``others`` that hold ``folded`` once case-folded, found in one pass
        over all of them (a call id in a folder of thousands of recordings)."""
        raw, text = self._joined
        if len(text) != len(raw):  # a name that case folding lengthens: name by name
            return [name for name in self.others if folded in name.casefold()]
        # Case folding turned each character into one: positions in both texts agree.
        names = []
        at = text.find(folded)
        while at >= 0:
            start = text.rfind("\0", 0, at) + 1
            end = text.find("\0", at)
            if end < 0:
                names.append(raw[start:])
                break
            names.append(raw[start:end])
            at = text.find(folded, end)
        return names

    @functools.cached_property
    def _joined(self) -> tuple[str, str]:
        """All names joined by NUL (no file name can hold it), as they are and case-folded."""
        raw = "\0".join(self.others)
        return raw, raw.casefold()


_Stamp = tuple[int, int, int, int]


def _stamp(st: os.stat_result) -> _Stamp:
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def read_listing(path: str) -> Listing:
    """Read the folder at ``path`` (``OSError`` as ``os.scandir`` raises it)."""
    folders: list[str] = []
    others: list[str] = []
    links: list[str] = []
    with os.scandir(path) as entries:
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.name)
                    continue
                if entry.is_symlink():
                    links.append(entry.name)
            except OSError:
                continue  # vanished while listing
            others.append(entry.name)
    return Listing(tuple(folders), tuple(others), frozenset(links))


class ListingCache:
    """Listings of recently read folders, bounded by the number of names. Thread-safe."""

    def __init__(
        self, max_names: int = MAX_NAMES, *, clock: Callable[[], int] = time.time_ns
    ) -> None:
        """``clock``: the wall clock in nanoseconds, the one file times are stamped with."""
        self._max_names = max_names
        self._clock = clock
        self._kept: cachetools.LRUCache[str, tuple[_Stamp, Listing]] = cachetools.LRUCache(
            max_names, getsizeof=lambda kept: 1 + len(kept[1].folders) + len(kept[1].others)
        )
        self._lock = threading.Lock()

    def listing(self, path: str) -> Listing:
        """The entries of the folder at ``path``, kept or freshly read (``OSError`` when it
        cannot be read, as ``os.scandir`` raises it)."""
        before = os.stat(path)
        if not stat.S_ISDIR(before.st_mode):
            raise NotADirectoryError(path)
        stamp = _stamp(before)
        with self._lock:
            kept = self._kept.get(path)
        if kept is not None:
            if kept[0] == stamp:
                return kept[1]
            with self._lock:
                self._kept.pop(path, None)
        began = self._clock()
        listing = read_listing(path)
        settled = began - max(before.st_mtime_ns, before.st_ctime_ns) > SETTLED_NS
        size = 1 + len(listing.folders) + len(listing.others)
        if settled and size <= self._max_names and _stamp(os.stat(path)) == stamp:
            with self._lock:
                self._kept[path] = (stamp, listing)
        return listing
