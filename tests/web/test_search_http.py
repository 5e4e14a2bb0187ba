"""POST/GET /search/ over real HTTP: every body form, every token form, errors as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.web.conftest import TOKEN, Archive, Gateway


def _names(answer: requests.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert body["status"] == "OK"
    return sorted(f["name"] for f in body["files"])


@pytest.mark.parametrize("path", ["/search/", "/search"])
@pytest.mark.parametrize("form", ["form", "json", "query-get", "query-post", "get-body"])
def test_every_body_form_finds_the_call(
    gw: Gateway, archive: Archive, path: str, form: str
) -> None:
    call = archive.call_with(2)
    fields = {"token": TOKEN, "callid": call.callid, "timestamp": call.start}
    url = gw.url + path
    if form == "form":
        answer = requests.post(url, data=fields, timeout=10)
    elif form == "json":
        answer = requests.post(url, json=fields, timeout=10)
    elif form == "query-get":
        answer = requests.get(url, params=fields, timeout=10)
    elif form == "query-post":
        answer = requests.post(f"{url}?{urlencode(fields)}", timeout=10)
    else:
        answer = requests.get(url, data=fields, timeout=10)
    assert _names(answer) == sorted(f.rsplit("/", 1)[1] for f in call.files)


def test_answer_shape(gw: Gateway, archive: Archive) -> None:
    call = archive.call_with(1)
    body = gw.search(callid=call.callid, timestamp=call.start).json()
    assert body["callid"] == call.callid
    (f,) = body["files"]
    assert set(f) == {
        "name",
        "url",
        "size",
        "type",
        "format",
        "mtime",
        "expires",
        "empty",
        "duration",
        "site",
    }
    assert f["site"] is None  # no --site-name, no federation (docs/federation.md)
    assert body["errors"] == []
    assert f["duration"] == round((f["size"] - 44) / 16000, 2)  # 8 kHz 16-bit mono PCM
    assert f["url"].startswith(f"{gw.url}/files/")
    # the link shows a neutral name from the call id, never the stored name (it holds the
    # caller's number) nor the storage path
    assert f["url"].endswith(f"/call-{call.callid}.wav")
    caller = f["name"].split("-")[2]
    assert caller.isdigit()
    assert caller not in f["url"]
    assert str(archive.root) not in f["url"]
    assert f["name"] == call.files[0].rsplit("/", 1)[1]  # QueueMetrics still gets the name
    assert f["type"] == "audio/wav"
    assert f["format"] == "wav"
    assert f["empty"] is False
    assert f["size"] == (archive.root / call.files[0]).stat().st_size
    assert f["mtime"].endswith("Z")
    assert f["expires"].endswith("Z")
    assert "key" not in f  # no paths of this machine in answers
    assert "source" not in f


@pytest.mark.parametrize(
    "names",
    [
        {"callid": "c", "timestamp": "t"},
        {"uniqueid": "c", "ts": "t"},
        {"call_id": "c", "start": "t"},
        {"callId": "c", "timestamp": "t"},
    ],
)
def test_field_aliases(gw: Gateway, archive: Archive, names: dict[str, str]) -> None:
    call = archive.call_with(1)
    values = {"c": call.callid, "t": call.start}
    fields = {name: values[v] for name, v in names.items()}
    answer = gw.search(**fields, server="", agent="Agent/101", queue="300", whatever="x")
    assert len(_names(answer)) == 1


@pytest.mark.parametrize(
    "timestamp",
    ["2026-03-07.09:15:00", "1772871300", "2026-03-07T08:15:00Z", "2026-03-07T09:15:00 01:00"],
)
def test_timestamp_formats(gw: Gateway, archive: Archive, timestamp: str) -> None:
    call = archive.calls[0]
    assert len(_names(gw.search(callid=call.callid, timestamp=timestamp))) == 1


def test_without_timestamp_the_whole_archive_is_searched(gw: Gateway, archive: Archive) -> None:
    call = archive.calls[-1]
    assert len(_names(gw.search(callid=call.callid))) == len(call.files)


def test_nothing_found_is_ok_with_no_files(gw: Gateway, archive: Archive) -> None:
    answer = gw.search(callid="1999999999.1", timestamp=archive.calls[0].start)
    assert answer.status_code == 200
    assert answer.json() == {"status": "OK", "callid": "1999999999.1", "files": [], "errors": []}


@pytest.mark.parametrize("how", ["token", "searchtoken", "bearer", "json-token", "query"])
def test_every_token_form(gw: Gateway, archive: Archive, how: str) -> None:
    call = archive.calls[0]
    fields = {"callid": call.callid, "timestamp": call.start}
    url = f"{gw.url}/search/"
    if how == "bearer":
        answer = requests.post(
            url, data=fields, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
    elif how == "json-token":
        answer = requests.post(url, json={**fields, "token": TOKEN}, timeout=10)
    elif how == "query":
        answer = requests.post(f"{url}?token={TOKEN}", data=fields, timeout=10)
    else:
        answer = requests.post(url, data={**fields, how: TOKEN}, timeout=10)
    assert len(_names(answer)) == 1


@pytest.mark.parametrize(
    ("fields", "headers"),
    [
        ({}, {}),
        ({"token": "wrong"}, {}),
        ({"token": TOKEN + "x"}, {}),
        ({"searchtoken": ""}, {}),
        ({}, {"Authorization": "Bearer wrong"}),
        ({}, {"Authorization": f"Basic {TOKEN}"}),
    ],
)
def test_missing_or_wrong_token_is_401(
    gw: Gateway, archive: Archive, fields: dict[str, str], headers: dict[str, str]
) -> None:
    answer = requests.post(
        f"{gw.url}/search/",
        data={"callid": "bad/../id", **fields},  # checked before the (bad) call id
        headers=headers,
        timeout=10,
    )
    assert answer.status_code == 401
    assert answer.json()["status"] == "ERROR"
    assert TOKEN not in answer.text
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"callid": ""},
        {"callid": "../../etc/passwd"},
        {"callid": "1772871300.101/.."},
        {"callid": "a\\b"},
        {"callid": "x" * 500},
        {"callid": "1772871300.101", "timestamp": "yesterday"},
        {"callid": "1772871300.101", "tenant": ".."},
        {"callid": "1772871300.101", "tenant": "../other"},
    ],
)
def test_malformed_search_is_400(gw: Gateway, fields: dict[str, str]) -> None:
    answer = gw.search(**fields)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert body["status"] == "ERROR"
    assert body["error"]
    assert "Traceback" not in answer.text


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b'{"callid": {"a": 1}}', "application/json"),
        (b"callid=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"[" * 5000, "application/json"),  # nested too deep for the parser
    ],
)
def test_unreadable_body_is_400_even_without_token(
    gw: Gateway, body: bytes, content_type: str
) -> None:
    answer = requests.post(
        f"{gw.url}/search/", data=body, headers={"Content-Type": content_type}, timeout=10
    )
    assert answer.status_code == 400
    assert answer.json()["status"] == "ERROR"


def test_large_body_is_413(gw: Gateway) -> None:
    answer = requests.post(
        f"{gw.url}/search/", data={"token": TOKEN, "pad": "x" * 70_000}, timeout=10
    )
    assert answer.status_code == 413
    assert answer.json()["status"] == "ERROR"


def test_json_numbers_are_accepted(gw: Gateway, archive: Archive) -> None:
    call = archive.calls[0]
    answer = requests.post(
        f"{gw.url}/search/",
        data=json.dumps({"token": TOKEN, "callid": call.callid, "timestamp": 1772871300}),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert len(_names(answer)) == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_json(gw: Gateway, method: str) -> None:
    answer = requests.request(method, f"{gw.url}/search/", timeout=10)
    assert answer.status_code == 405
    assert answer.json()["status"] == "ERROR"


def test_unknown_route_is_404_json(gw: Gateway) -> None:
    answer = requests.get(f"{gw.url}/etc/passwd", timeout=10)
    assert answer.status_code == 404
    assert answer.json()["status"] == "ERROR"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"token": "%s", "callid": "1\\ud800"}', "application/json"),
        (b'{"token": "%s", "callid": "1773054150.110", "tenant": "\\udfff"}', "application/json"),
        (b'{"token": "%s", "callid": "1773054150.110", "\\ud800": "x"}', None),
    ],
    ids=["callid", "tenant", "field-name"],
)
def test_a_lone_surrogate_is_400_and_audited(
    start_gateway: Any, tmp_path: Path, body: bytes, content_type: str | None
) -> None:
    audit = tmp_path / "audit.jsonl"
    gw = start_gateway("--audit-log", str(audit))
    headers = {"Content-Type": content_type} if content_type else {}
    answer = requests.post(
        f"{gw.url}/search/", data=body % TOKEN.encode(), headers=headers, timeout=10
    )
    assert answer.status_code == 400, answer.text
    assert answer.json() == {
        "status": "ERROR",
        "error": "the JSON body holds an escaped lone surrogate: it is not text",
    }
    gw.stop()
    [line] = [json.loads(text) for text in audit.read_text().splitlines()]
    assert line["status"] == 400
    assert "internal error" not in gw.log()


@pytest.mark.parametrize(
    "request_of",
    [
        lambda url: requests.post(url, data=f"token={TOKEN}&callid=1%ED%A0%80%FF", timeout=10),
        lambda url: requests.get(f"{url}?token={TOKEN}&callid=1%ED%A0%80%FF", timeout=10),
        lambda url: requests.get(f"{url}?token={TOKEN}&callid=1%ED%A0%80&tenant=%80", timeout=10),
    ],
    ids=["form", "query", "query-tenant"],
)
def test_bytes_that_are_not_utf8_in_a_form_or_query_are_never_a_500(
    start_gateway: Any, tmp_path: Path, request_of: Any
) -> None:
    audit = tmp_path / "audit.jsonl"
    gw = start_gateway("--audit-log", str(audit))
    answer = request_of(f"{gw.url}/search/")
    assert answer.status_code in (200, 400), answer.text
    assert answer.headers["Content-Type"].startswith("application/json")
    gw.stop()
    [line] = [json.loads(text) for text in audit.read_text().splitlines()]
    assert line["status"] == answer.status_code
