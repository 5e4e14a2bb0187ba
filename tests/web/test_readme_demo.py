"""The README's first command serves the demo archive, and its curl line finds a call there."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
from pathlib import Path

import requests

ROOT = Path(__file__).parents[2]


def readme_curl() -> str:
    text = (ROOT / "README.md").read_text()
    line = re.search(r"^curl .*/search/$", text, re.M)
    assert line is not None
    return line.group(0)


def test_demo_script_serves_what_the_readme_searches(tmp_path: Path) -> None:
    env = {**os.environ, "DEMO_ARCHIVE": str(tmp_path / "archive")}
    proc = subprocess.Popen(
        ["bash", "scripts/demo.sh", "--bind-to", "127.0.0.1:0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        url = None
        for raw in proc.stdout:  # set-up output first, then the gateway's banner
            line = raw.decode()
            if line.startswith("gateway: serving on "):
                url = line.split()[3]
                break
        assert url, "the demo never started serving"
        argv = shlex.split(readme_curl().replace("http://localhost:4000", url))
        done = subprocess.run(argv, capture_output=True, timeout=30, check=True)
        answer = json.loads(done.stdout)
        assert answer["status"] == "OK"
        names = sorted(f["name"] for f in answer["files"])
        assert names == ["1773054150.110-in.wav", "1773054150.110-out.wav"]
        link = answer["files"][0]["url"]
        audio = requests.get(link, headers={"Range": "bytes=0-11"}, timeout=30)
        assert audio.status_code == 206
        assert audio.content[:4] == b"RIFF"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
