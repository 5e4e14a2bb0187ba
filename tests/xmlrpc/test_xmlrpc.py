"""QueueMetrics' XML-RPC audio protocol, driven by Python's xmlrpc.client over real HTTP."""

from __future__ import annotations

import xmlrpc.client
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_until
from tests.web.conftest import TOKEN, Archive, Gateway
from tests.xmlrpc.conftest import WAV49_BLOCKS, WAV49_CALLID, WAV49_KEY, rpc_url

CALL = """<?xml version="1.0"?>
<methodCall><methodName>QMAudio.findStoredFile</methodName><params>
<param><value><string></string></value></param>
<param><value><string>{callid}</string></value></param>
<param><value><string>1</string></value></param>
<param><value><string>admin</string></value></param>
</params></methodCall>"""


def proxy(gw: Gateway, path: str = "/xmlrpc", token: str = TOKEN) -> xmlrpc.client.ServerProxy:
    return xmlrpc.client.ServerProxy(rpc_url(gw, path, token))


def post(gw: Gateway, body: bytes | str, **kw: object) -> requests.Response:
    return requests.post(
        rpc_url(gw), data=body, headers={"Content-Type": "text/xml"}, timeout=30, **kw
    )  # type: ignore[arg-type]


def fault_of(answer: requests.Response) -> xmlrpc.client.Fault:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        xmlrpc.client.loads(answer.content)
    return caught.value


def duration(path: Path) -> str:
    seconds = round((path.stat().st_size - 44) / 16000)
    return f"{seconds // 60}:{seconds % 60:02d}"


@pytest.mark.parametrize("path", ["/xmlrpc", "/RPC2"])
def test_single_file(gw: Gateway, archive: Archive, path: str) -> None:
    call = archive.call_with(1)
    found, url, length, encoding, dur = proxy(gw, path).QMAudio.findStoredFile(
        "", call.callid, "1", "admin"
    )
    file = archive.root / call.files[0]
    assert found is True
    assert url.startswith(f"{gw.url}/files/")
    assert url.endswith(f"/call-{call.callid}.wav")  # neutral: no caller number in the link
    assert length == str(file.stat().st_size)
    assert encoding == "wav"
    assert dur == duration(file)
    assert requests.get(url, timeout=10).content == file.read_bytes()


def test_several_files_multi(gw: Gateway, archive: Archive) -> None:
    call = archive.call_with(2)
    found, url, length, encoding, dur = proxy(gw).QMAudio.findStoredFile(
        "", call.callid, "1", "admin"
    )
    assert found is True
    assert url.startswith("MULTI:")
    urls = url[len("MULTI:") :].split(" ")
    files = sorted(archive.root / f for f in call.files)
    assert len(urls) == len(length.split(" ")) == len(encoding.split(" ")) == len(dur.split(" "))
    assert length.split(" ") == [str(f.stat().st_size) for f in files]
    assert encoding.split(" ") == ["wav", "wav"]
    assert dur.split(" ") == [duration(f) for f in files]
    for link, file in zip(urls, files, strict=True):
        assert requests.get(link, timeout=10).content == file.read_bytes()


def test_wav49_duration_from_its_header(gw: Gateway, archive: Archive) -> None:
    found, _, length, encoding, dur = proxy(gw).QMAudio.findStoredFile(
        "srv1", WAV49_CALLID, "1", "admin"
    )
    assert (found, encoding, dur) == (True, "wav49", "1:15")
    assert length == str((archive.root / WAV49_KEY).stat().st_size)
    assert WAV49_BLOCKS * 0.04 == 75
    # the JSON answer carries the same duration in seconds
    answer = requests.post(
        f"{gw.url}/search/",
        data={"token": TOKEN, "callid": WAV49_CALLID},
        timeout=10,
    )
    assert answer.json()["files"][0]["duration"] == 75.0


def test_empty_recording_has_zero_duration(gw: Gateway, archive: Archive) -> None:
    empty = next(c for c in archive.calls if c.files[0].split("/")[-1].startswith("out-"))
    found, _, length, _, dur = proxy(gw).QMAudio.findStoredFile("", empty.callid, "1", "admin")
    assert (found, length, dur) == (True, "44", "0:00")


def test_not_found(gw: Gateway) -> None:
    assert proxy(gw).QMAudio.findStoredFile("", "1999999999.1", "1", "admin") == [
        False,
        "",
        "",
        "",
        "",
    ]


@pytest.mark.parametrize("method", ["listenOngoingCall", "listenOngoingCallOutbound"])
def test_ongoing_calls_are_never_found(gw: Gateway, method: str) -> None:
    call = getattr(proxy(gw).QMAudio, method)
    assert call("", "1773047700.109", "Agent/101", "1", "admin") == [False, "", 0, 0]
    assert call("", "1773047700.109", "Agent/101", "1") == [False, "", 0, 0]


@pytest.mark.parametrize(
    ("method", "args", "code"),
    [
        ("QMAudio.nothing", (), -32601),
        ("system.listMethods", (), -32601),
        ("QMAudio.findStoredFile", ("", "1773047700.109"), -32602),
        ("QMAudio.findStoredFile", ("", "1773047700.109", "1", "admin", "extra"), -32602),
        ("QMAudio.findStoredFile", ("", ["1773047700.109"], "1", "admin"), -32602),
        ("QMAudio.findStoredFile", ("", "../../etc/passwd", "1", "admin"), -32602),
        ("QMAudio.findStoredFile", ("", "", "1", "admin"), -32602),
        ("QMAudio.listenOngoingCall", ("",), -32602),
    ],
)
def test_bad_calls_are_faults(
    gw: Gateway, method: str, args: tuple[object, ...], code: int
) -> None:
    with pytest.raises(xmlrpc.client.Fault) as caught:
        getattr(proxy(gw), method)(*args)
    assert caught.value.faultCode == code


def test_numeric_call_id_is_read_as_text(gw: Gateway) -> None:
    # read as the text "1999999999", which has no sequence number: no Asterisk id
    with pytest.raises(xmlrpc.client.Fault, match="does not look like one call's id"):
        proxy(gw).QMAudio.findStoredFile(0, 1999999999, 1, "admin")


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_wrong_or_missing_token_is_401(gw: Gateway, token: str) -> None:
    with pytest.raises(xmlrpc.client.ProtocolError) as caught:
        proxy(gw, token=token).QMAudio.findStoredFile("", "1773047700.109", "1", "admin")
    assert caught.value.errcode == 401


def test_bearer_header_works_too(gw: Gateway, archive: Archive) -> None:
    call = archive.call_with(1)
    answer = requests.post(
        f"{gw.url}/xmlrpc",
        data=CALL.format(callid=call.callid),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert xmlrpc.client.loads(answer.content)[0][0][0] is True


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("<methodCall><methodName>QMAudio.findStoredFile", -32700),
        ("not xml at all", -32700),
        ("", -32700),
        ("<foo/>", -32600),
        ("<methodCall><params></params></methodCall>", -32600),
        (b"\xff\xfe<\x00", -32700),
        # a lone surrogate, as a character reference and as (invalid) UTF-8: not XML text
        (CALL.format(callid="1&#xD800;"), -32700),
        (CALL.format(callid="1").encode().replace(b">1<", b">1\xed\xa0\x80<"), -32700),
    ],
    ids=["cut", "not-xml", "empty", "not-a-call", "no-method", "utf16", "charref", "bytes"],
)
def test_malformed_xml(gw: Gateway, body: str | bytes, code: int) -> None:
    answer = post(gw, body)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/xml")
    assert fault_of(answer).faultCode == code


def rss_kib(gw: Gateway) -> int:
    for line in Path(f"/proc/{gw.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


BILLION_LAUGHS = (
    """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">
"""
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + """]>
<methodCall><methodName>QMAudio.findStoredFile</methodName><params>
<param><value><string>&lol9;</string></value></param></params></methodCall>"""
)

XXE = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<methodCall><methodName>QMAudio.findStoredFile</methodName><params>
<param><value><string></string></value></param>
<param><value><string>&xxe;</string></value></param>
<param><value><string>1</string></value></param>
<param><value><string>admin</string></value></param></params></methodCall>"""

PARAMETER_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % ext SYSTEM "http://127.0.0.1:9/evil.dtd"> %ext;]>
<methodCall><methodName>x</methodName></methodCall>"""


@pytest.mark.parametrize("bomb", [BILLION_LAUGHS, XXE, PARAMETER_ENTITY])
def test_xml_bombs_are_refused(gw: Gateway, bomb: str) -> None:
    before = rss_kib(gw)
    answer = post(gw, bomb)
    assert answer.status_code == 200
    fault = fault_of(answer)
    assert fault.faultCode == -32700
    assert "forbidden XML" in fault.faultString
    assert "root:" not in answer.text
    assert rss_kib(gw) - before < 20 * 1024  # no expansion happened
    assert requests.get(f"{gw.url}/healthz", timeout=10).status_code == 200


def test_oversized_body_is_413(gw: Gateway, archive: Archive) -> None:
    body = CALL.format(callid=archive.call_with(1).callid) + " " * (70 * 1024)
    answer = post(gw, body)
    assert answer.status_code == 413
    assert "larger than" in fault_of(answer).faultString

    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(100):
            yield b" " * 1024

    assert post(gw, chunks()).status_code == 413  # type: ignore[arg-type]
    with pytest.raises(xmlrpc.client.ProtocolError) as caught:
        proxy(gw).QMAudio.findStoredFile("", "x" * 100, "1", "a" * 70_000)
    assert caught.value.errcode == 413


def test_compressed_body_is_415(gw: Gateway) -> None:
    answer = requests.post(
        rpc_url(gw), data=b"\x1f\x8b...", headers={"Content-Encoding": "gzip"}, timeout=10
    )
    assert answer.status_code == 415


def test_get_is_not_allowed(gw: Gateway) -> None:
    assert requests.get(rpc_url(gw), timeout=10).status_code == 405


def test_token_is_not_logged(gw: Gateway) -> None:
    logged = gw.log().count("POST /xmlrpc 200")  # the module's gateway logged earlier calls
    proxy(gw).QMAudio.findStoredFile("", "1999999999.1", "1", "admin")
    # the access line is written once the response is finished: wait for this call's
    wait_until(lambda: gw.log().count("POST /xmlrpc 200") > logged, what="the call's access line")
    assert TOKEN not in gw.log()
