"""Runs the examples of docs/protocol.md against a real server, so they cannot rot."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_gateway
from tests.web.conftest import Gateway

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DOC_URL = "http://localhost:4000"


def shell_blocks() -> list[str]:
    return re.findall(r"^```sh\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def commands(block: str) -> list[list[str]]:
    return [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_protocol_examples_run(tmp_path: Path) -> None:
    setup, *examples = shell_blocks()
    demo, serve = commands(setup)
    assert demo[:2] == ["gateway", "demo"]
    assert serve[:2] == ["gateway", "serve"]
    archive = tmp_path / demo[2]
    result = run_gateway("demo", str(archive), *demo[3:])
    assert result.returncode == 0, result.stderr
    args = [str(archive) if a == demo[2] else a for a in serve[2:]]
    args[args.index("--bind-to") + 1] = "127.0.0.1:0"
    gw = Gateway(args, tmp_path / "gateway.log")
    try:
        script = "\n".join(examples).replace(DOC_URL, gw.url)
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        expected = re.findall(r"^# prints: (.*)$", script, flags=re.M)
        assert expected
        position = 0
        for want in expected:
            found = run.stdout.find(want + "\n", position)
            assert found >= 0, f"{want!r} not printed in order:\n{run.stdout}"
            position = found + len(want)
        assert (tmp_path / "call.wav").stat().st_size == 96044
        assert '"status": "OK"' in run.stdout
    finally:
        assert gw.stop() == 0
    assert "/files/<redacted>/" in gw.log()
