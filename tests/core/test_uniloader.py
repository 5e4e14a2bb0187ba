"""Coming from Uniloader: the AudioVault article's command line, run as ``gateway av serve``,
answers QueueMetrics (docs/uniloader.md); epoch-millisecond timestamps over real HTTP."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import xmlrpc.client
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import tests.web.conftest as web
from gateway.cli.av import CERTIFICATE_OPTIONS, serve_av_command
from gateway.cli.serve import serve_command
from tests.conftest import free_port, run_gateway
from tests.web.conftest import Archive, Call, Gateway, caddy_missing, make_archive

# Copied verbatim from the seed article (/work/shared/seed-audiovault.txt), "Starting AudioVault".
ARTICLE = """\
     uniloader av serve \\
        --path file:/mnt/audio \\
        --token Sup3rZ3brA  \\
        --public-url https://audiovault.my.server \\
        --bind-to localhost:4000
"""
ARTICLE_TOKEN = "Sup3rZ3brA"  # the article's example token
ARTICLE_PATH, ARTICLE_BIND = "file:/mnt/audio", "localhost:4000"


def article_args() -> list[str]:
    argv = shlex.split(ARTICLE.replace("\\\n", " "))  # the shell joins continued lines
    assert argv[:3] == ["uniloader", "av", "serve"]
    return argv[3:]


def substituted(audio: Path, port: int) -> list[str]:
    """The article's options with the two values a test machine cannot use as they are: the
    folder (/mnt/audio is not ours to create; a missing source folder stops the gateway) and
    the port (4000 may be taken by another test or the demo); nothing else changes."""
    args = article_args()
    changed = [
        f"file:{audio}" if a == ARTICLE_PATH else f"localhost:{port}" if a == ARTICLE_BIND else a
        for a in args
    ]
    assert [i for i, (a, b) in enumerate(zip(args, changed, strict=True)) if a != b] == [1, 7]
    return changed


def start_av(args: list[str], log: Path, env: dict[str, str] | None = None) -> Gateway:
    """``gateway av serve ARGS``, through the suite's serve-process helper."""
    return Gateway(args, log, env, command=("av", "serve"))


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Archive:
    return make_archive(tmp_path_factory.mktemp("audio"))


@pytest.fixture(scope="module")
def article_gw(tmp_path_factory: pytest.TempPathFactory, audio: Archive) -> Iterator[Gateway]:
    log = tmp_path_factory.mktemp("article") / "gateway.log"
    gw = start_av(substituted(audio.root, free_port()), log, {"TZ": web.TZ})
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def dated_gw(tmp_path_factory: pytest.TempPathFactory, audio: Archive) -> Iterator[Gateway]:
    """Uniloader's date placeholders (protocol.md section 3) and the PBX's zone from TZ, as
    Uniloader takes it: each search lists one day folder, so the timestamp decides."""
    log = tmp_path_factory.mktemp("dated") / "gateway.log"
    args = ["--path", f"file:{audio.root}/%YY/%MM/%DD", "--token", ARTICLE_TOKEN]
    gw = start_av([*args, "--bind-to", "127.0.0.1:0"], log, {"TZ": web.TZ})
    yield gw
    gw.stop()


def search(gw: Gateway, token: str = ARTICLE_TOKEN, **fields: object) -> requests.Response:
    return requests.post(f"{gw.url}/search/", data={"token": token, **fields}, timeout=30)


def millis(call: Call, shift: timedelta = timedelta(0)) -> int:
    return int((datetime.fromisoformat(call.start) + shift).timestamp()) * 1000 + 265


def test_the_article_command_line_serves_queuemetrics(article_gw: Gateway, audio: Archive) -> None:
    call = audio.call_with(2)
    answer = search(article_gw, callid=call.callid, timestamp=call.start)
    assert answer.status_code == 200, answer.text
    files = answer.json()["files"]
    assert sorted(f["name"] for f in files) == sorted(Path(f).name for f in call.files)
    # Links are on the public URL of the article; the path after it downloads the file here.
    for file in files:
        assert file["url"].startswith("https://audiovault.my.server/files/")
        path = file["url"].removeprefix("https://audiovault.my.server")
        download = requests.get(f"{article_gw.url}{path}", timeout=30)
        assert download.status_code == 200
        assert download.content == next(
            (audio.root / f).read_bytes() for f in call.files if f.endswith(file["name"])
        )
    # The article's 10-character token works, with a warning at start.
    assert "the search token is shorter than 16 characters" in article_gw.log()
    assert ARTICLE_TOKEN not in article_gw.log()
    refused = search(article_gw, token="Sup3rZ3brB", callid=call.callid)
    assert refused.status_code == 401
    assert "error" in refused.json()


def test_the_article_gateway_answers_xmlrpc_too(article_gw: Gateway, audio: Archive) -> None:
    call = audio.call_with(1)
    rpc = xmlrpc.client.ServerProxy(f"{article_gw.url}/xmlrpc?token={ARTICLE_TOKEN}")
    answer: list[object] = rpc.QMAudio.findStoredFile("", call.callid, "1", "admin")  # type: ignore[assignment]
    assert answer[0] is True
    assert str(answer[1]).startswith("https://audiovault.my.server/files/")


def test_the_uniloader_page_shows_the_article_line_with_only_the_name_changed() -> None:
    page = (Path(__file__).parents[2] / "docs" / "uniloader.md").read_text()
    block = re.search(r"```sh\n(.*?)```", page, re.S)
    assert block is not None
    command = shlex.split(block.group(1).replace("\\\n", " "))
    assert command == ["gateway", "av", "serve", *article_args()]


def test_av_serve_is_serve_plus_the_certificate_options() -> None:
    serve_params = serve_command.params
    assert serve_av_command.params[: len(serve_params)] == serve_params  # the same objects
    extra = [p.name for p in serve_av_command.params[len(serve_params) :]]
    assert extra == list(CERTIFICATE_OPTIONS)


def test_certificate_options_stop_with_the_caddy_lines() -> None:
    tls = ["--certificate", "fullchain.pem", "--certificate-key", "privkey.pem"]
    result = run_gateway("av", "serve", *article_args(), *tls, timeout=30)
    assert result.returncode == 2
    assert b"serving on" not in result.stdout
    error = result.stderr.decode()
    assert error.startswith("gateway: error: --certificate/--certificate-key:")
    here = Path.cwd()  # the gateway's too: relative paths are made absolute for Caddy
    block = caddy_block(error)
    assert block.startswith(
        f"audiovault.my.server {{\n\ttls {here / 'fullchain.pem'} {here / 'privkey.pem'}\n"
    )
    assert block.endswith("\treverse_proxy localhost:4000\n}")
    assert "deploy/Caddyfile" in error
    assert "Traceback" not in error


def caddy_block(error: str) -> str:
    found = re.search(r"^\S+ \{\n.*?^\}", error, re.S | re.M)
    assert found is not None, error
    return found.group(0)


@pytest.mark.skipif(caddy_missing() is not None, reason=str(caddy_missing()))
def test_the_caddy_lines_printed_are_a_valid_caddy_configuration(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "audiovault.my.server")
    tls = ["--certificate", str(cert), "--certificate-key", str(key)]
    error = run_gateway("av", "serve", *article_args(), *tls, timeout=30).stderr.decode()
    (tmp_path / "Caddyfile").write_text(caddy_block(error) + "\n")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    validate = ["caddy", "validate", "--config", "Caddyfile", "--adapter", "caddyfile"]
    done = subprocess.run(validate, cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert b"Valid configuration" in done.stdout + done.stderr


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A throw-away certificate for ``name`` and its key, as PEM files in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.mark.parametrize("via", ["form", "json", "query"])
def test_a_timestamp_in_epoch_milliseconds_finds_the_call(
    dated_gw: Gateway, audio: Archive, via: str
) -> None:
    call = audio.call_with(1)
    url, ms = f"{dated_gw.url}/search/", millis(call)
    if via == "form":
        answer = search(dated_gw, callid=call.callid, timestamp=ms)
    elif via == "json":  # a JSON number, as a JavaScript client would send Date.now()
        body: dict[str, str | int] = {"token": ARTICLE_TOKEN, "uniqueid": call.callid, "ts": ms}
        answer = requests.post(url, json=body, timeout=30)
    else:
        query = {"token": ARTICLE_TOKEN, "callid": call.callid, "start": ms}
        answer = requests.get(url, params=query, timeout=30)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    assert [f["name"] for f in answer.json()["files"]] == [Path(call.files[0]).name]


def test_the_millisecond_timestamp_is_the_one_searched(dated_gw: Gateway, audio: Archive) -> None:
    # Two days later: only that day's folder is listed, so the call is not found there
    # (the call id's own epoch second would have found it: the timestamp wins).
    call = audio.call_with(1)
    answer = search(dated_gw, callid=call.callid, timestamp=millis(call, timedelta(days=2)))
    assert answer.status_code == 200, answer.text
    assert answer.json()["files"] == []


@pytest.mark.parametrize(
    "timestamp",
    ["100000000000000000", "17730811232651234567", "1773081123265x", "1.773081123265e12", "12"],
)
def test_unreadable_numeric_timestamps_are_a_clean_400(
    dated_gw: Gateway, audio: Archive, timestamp: str
) -> None:
    answer = search(dated_gw, callid=audio.call_with(1).callid, timestamp=timestamp)
    assert answer.status_code == 400
    assert "timestamp" in answer.json()["error"]
    assert "Traceback" not in answer.text
