"""The source contract is open: a kind of source written here, and nowhere in the core, is
searched next to the built-in ones, signed, served with ranges and inspected; a failing
source never hides what the next one finds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import falcon.testing
import pytest

from gateway.builtin_layouts import FREEPBX
from gateway.errors import Forbidden
from gateway.query import Query, parse_timezone
from gateway.recordings import CallMatcher, Recording
from gateway.search import Searcher, SearchResult, SearchSettings
from gateway.secret_files import Secret
from gateway.signing import LinkSigner
from gateway.source import Found, Source, StoredFile
from gateway.sources import StoreSource
from gateway.web.app import create_app
from gateway.web.config import WebConfig
from gateway_local import LocalStore

TOKEN = "third-kind-token"
SETTINGS = SearchSettings(timezone=parse_timezone("UTC"))
CALL = "1773047410.1"
KEY = f"2026/03/09/in-100-200-20260309-101010-{CALL}.wav"
AUDIO = b"RIFF" + bytes(range(256)) * 40


class IndexSource:
    """A third kind of source: answers from a table built once (as an index would), opens
    what its links name through the store it indexes."""

    federated = False
    site = None

    def __init__(self, id: str, store: LocalStore) -> None:
        self.id = id
        self.label = f"index of {store.description}"
        self.store = store
        self.table = {e.key: e for e in store.list("", recursive=True)}
        self.searched = 0

    def check(self) -> None:
        pass

    def search(
        self, query: Query, days: Sequence[date], *, via: Sequence[str], deadline: float
    ) -> Found:
        self.searched += 1
        matches = CallMatcher(query.callid)
        return Found(
            [
                Recording.from_entry(self.id, e)
                for k, e in sorted(self.table.items())
                if matches(e.name)
            ]
        )

    def file(self, key: str, *, tenant: str | None) -> StoredFile:
        if key not in self.table:
            raise Forbidden("not in the index")
        return StoredFile(self.id, self.store.stat(key), self.store)

    def duration(self, recording: Recording) -> float | None:
        return None

    def separates_tenants(self) -> bool:
        return False

    def inspect(self, query: Query, days: Sequence[date]) -> Iterator[str]:
        yield f"{len(self.table)} files indexed"

    def close(self) -> None:
        self.store.close()


class BrokenSource(IndexSource):
    """A source whose every search fails the way an unreadable day folder does."""

    def search(
        self, query: Query, days: Sequence[date], *, via: Sequence[str], deadline: float
    ) -> Found:
        self.searched += 1
        raise Forbidden("cannot read the folder '2026/03/09'")


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    (tmp_path / KEY).parent.mkdir(parents=True)
    (tmp_path / KEY).write_bytes(AUDIO)
    return tmp_path


def client(sources: list[Source]) -> falcon.testing.TestClient:
    config = WebConfig(
        sources=sources, settings=SETTINGS, token=Secret(TOKEN), signer=LinkSigner.random()
    )
    return falcon.testing.TestClient(create_app(config))


def test_a_third_kind_keeps_the_contract(archive: Path) -> None:
    assert isinstance(IndexSource("index", LocalStore(archive)), Source)


def test_a_third_kind_is_searched_in_order_with_the_others(archive: Path) -> None:
    index = IndexSource("index", LocalStore(archive))
    store = StoreSource("file:archive", LocalStore(archive), FREEPBX)
    searcher = Searcher([index, store], SearchSettings(timezone=SETTINGS.timezone, search_all=True))
    result = searcher.find(Query(CALL))
    assert [(r.source, r.key) for r in result.recordings] == [
        ("index", KEY),
        ("file:archive", KEY),
    ]
    first_only = Searcher([index, store], SETTINGS).find(Query(CALL))
    assert [r.source for r in first_only.recordings] == ["index"]
    assert index.searched == 2
    assert result.errors == first_only.errors == []


def test_a_third_kind_is_signed_and_served_with_ranges(archive: Path) -> None:
    index = IndexSource("index", LocalStore(archive))
    web = client([index])
    answer = web.simulate_post("/search/", json={"token": TOKEN, "callid": CALL}).json
    [found] = answer["files"]
    assert found["name"] == Path(KEY).name
    path = found["url"].split("://", 1)[1].split("/", 1)[1]
    whole = web.simulate_get("/" + path)
    assert whole.status_code == 200
    assert whole.content == AUDIO
    part = web.simulate_get("/" + path, headers={"Range": "bytes=4-9"})
    assert part.status_code == 206
    assert part.content == AUDIO[4:10]


def test_a_failing_source_is_an_error_entry_and_the_next_one_answers(archive: Path) -> None:
    broken = BrokenSource("broken", LocalStore(archive))
    index = IndexSource("index", LocalStore(archive))
    answer = client([broken, index]).simulate_post(
        "/search/", json={"token": TOKEN, "callid": CALL}
    )
    assert answer.status_code == 200
    assert [f["name"] for f in answer.json["files"]] == [Path(KEY).name]
    assert answer.json["errors"] == [
        {
            "site": None,
            "error": "index of file:" + str(archive) + ": cannot read the folder '2026/03/09'",
        }
    ]
    assert broken.searched == index.searched == 1


def test_sources_that_all_fail_alike_answer_with_their_error(archive: Path) -> None:
    broken = BrokenSource("broken", LocalStore(archive))
    answer = client([broken]).simulate_post("/search/", json={"token": TOKEN, "callid": CALL})
    assert answer.status_code == 403
    assert "cannot read the folder" in answer.json["error"]


class Site(IndexSource):
    """Another site (federated), answering after ``delay`` seconds."""

    federated = True

    def __init__(self, id: str, store: LocalStore, delay: float) -> None:
        super().__init__(id, store)
        self.site = id
        self.delay = delay

    def search(
        self, query: Query, days: Sequence[date], *, via: Sequence[str], deadline: float
    ) -> Found:
        time.sleep(self.delay)
        return super().search(query, days, via=via, deadline=deadline)


def test_a_hung_site_never_delays_the_answers_of_the_others(archive: Path) -> None:
    """Many searches at once, a site that hangs listed first: the other site answers every
    one of them; the hung one is reported (timed out, or busy with earlier asks)."""
    hung = Site("hung", LocalStore(archive), delay=5.0)
    good = Site("good", LocalStore(archive), delay=0.05)
    settings = SearchSettings(timezone=SETTINGS.timezone, peer_timeout=1.0)
    searcher = Searcher([hung, good], settings)
    results: list[object] = []

    def search() -> None:
        results.append(searcher.find(Query(CALL)))

    threads = [threading.Thread(target=search) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    searcher.stop()
    assert len(results) == 40
    for result in results:
        assert isinstance(result, SearchResult)
        assert [r.source for r in result.recordings] == ["good"]
        [error] = result.errors
        assert error.site == "hung"
        assert error.error in ("no answer within 1s", "still busy with 64 earlier searches")
