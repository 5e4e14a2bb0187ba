"""Runs the examples of docs/queuemetrics.md against real servers, so they cannot rot.

Each ```sh block that holds a ``gateway serve`` line sets a server up: the lines before it run
in bash, the serve line is started by the test on a free port; the ```sh and ```python blocks
that follow run against that server, and their ``# prints:`` lines are checked in order.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.web.conftest import Gateway

DOC = Path(__file__).resolve().parents[2] / "docs" / "queuemetrics.md"
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```", flags=re.S | re.M)
DOC_URL = re.compile(r"http://localhost:400\d")


def run(kind: str, code: str, cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    command = (
        ["bash", "-euo", "pipefail", "-c", code] if kind == "sh" else [sys.executable, "-c", code]
    )
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, f"{code}\n{done.stdout}{done.stderr}"
    return done.stdout


def check_prints(code: str, output: str) -> int:
    position = 0
    expected = re.findall(r"^# prints: (.*)$", code, flags=re.M)
    for want in expected:
        found = output.find(want + "\n", position)
        assert found >= 0, f"{want!r} not printed in order:\n{output}"
        position = found + len(want)
    return len(expected)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_queuemetrics_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the servers read the doc's relative paths
    servers: list[Gateway] = []
    checked = setups = 0
    try:
        gw: Gateway | None = None
        for kind, code in BLOCK.findall(DOC.read_text()):
            joined = code.replace("\\\n", " ")
            serve = [line for line in joined.splitlines() if line.startswith("gateway serve")]
            if serve:
                setups += 1
                before = joined[: joined.index(serve[0])]
                run("sh", before, tmp_path)
                args = shlex.split(serve[0])[2:]
                args[args.index("--bind-to") + 1] = "127.0.0.1:0"
                gw = Gateway(args, tmp_path / f"gateway-{setups}.log")
                servers.append(gw)
                continue
            assert gw is not None, "an example before any server"
            code = DOC_URL.sub(gw.url, code)
            checked += check_prints(code, run(kind, code, tmp_path))
    finally:
        for server in servers:
            assert server.stop() == 0
    assert setups == 2
    assert checked >= 12
    for server in servers:
        log = server.log()
        assert "demo-token" not in log
        assert "Sup3rZ3brA" not in log
