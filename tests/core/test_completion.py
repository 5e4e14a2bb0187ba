"""Shell completion, as the README documents it: click's own, through ``_GATEWAY_COMPLETE``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
BIN = Path(sys.executable).parent
GATEWAY = str(BIN / "gateway")


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [GATEWAY, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _gateway_completion gateway"),
        ("zsh", "compdef _gateway_completion gateway"),
        ("fish", "complete --no-files --command gateway"),
    ],
)
def test_the_documented_command_prints_a_completion_script(shell: str, marker: str) -> None:
    assert f"_GATEWAY_COMPLETE={shell}_source gateway" in README.read_text()
    assert marker in run({"_GATEWAY_COMPLETE": f"{shell}_source"})


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_commands_and_options() -> None:
    script = run({"_GATEWAY_COMPLETE": "bash_source"})

    def complete(*words: str) -> list[str]:
        program = (
            f"{script}\nCOMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}\n"
            "_gateway_completion gateway; printf '%s\\n' \"${COMPREPLY[@]}\""
        )
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run(
            ["bash", "-c", program], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("gateway", "se") == ["search", "serve", "setup"]
    assert complete("gateway", "serve", "--link") == ["--link-ttl", "--link-key-file"]
