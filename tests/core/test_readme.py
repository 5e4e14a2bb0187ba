"""The README's terminal examples run as written."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"


def terminal_examples() -> list[str]:
    section = README.read_text().split("## Searching from the terminal", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    text = block.group(1).replace("\\\n", " ")
    return [line.split("  #", 1)[0].strip() for line in text.splitlines() if line.strip()]


def test_readme_terminal_examples_run(tmp_path: Path) -> None:
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    commands = terminal_examples()
    assert len(commands) >= 4
    for command in commands:
        argv = [a.replace("/tmp/archive", str(tmp_path / "archive")) for a in shlex.split(command)]
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr)
    assert len(list((tmp_path / "legs").iterdir())) == 2
