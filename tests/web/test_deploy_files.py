"""The deployment files in deploy/ are valid for the tools that read them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import click
import pytest

from gateway.cli import main
from gateway.config_file import read_config
from gateway.web.capacity import CONNECTION_LIMIT, connection_limit

DEPLOY = Path(__file__).parents[2] / "deploy"


def option_names(command: click.Command) -> set[str]:
    return {
        opt[2:].replace("-", "_")
        for param in command.params
        for opt in getattr(param, "opts", [])
        if opt.startswith("--")
    }


def test_example_configuration_uses_only_serve_options() -> None:
    settings = read_config(DEPLOY / "gateway.toml")
    serve = main.commands["serve"]
    assert set(settings) <= option_names(serve)
    assert {"path", "timezone", "bind_to", "public_url", "token_file"} <= set(settings)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_unit_is_valid(tmp_path: Path) -> None:
    unit = tmp_path / "recording-gateway.service"
    # verify resolves ExecStart: point it at this checkout's gateway command
    text = (DEPLOY / "recording-gateway.service").read_text()
    gateway = shutil.which("gateway") or str(Path(__import__("sys").executable).parent / "gateway")
    unit.write_text(text.replace("/opt/recording-gateway/.venv/bin/gateway", gateway))
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True
    )
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if "recording-gateway.service" in line and "User=" not in line
    ]
    assert problems == [], done.stderr


def test_systemd_unit_allows_descriptors_for_every_connection() -> None:
    text = (DEPLOY / "recording-gateway.service").read_text()
    (limit,) = [
        line.split("=", 1)[1] for line in text.splitlines() if line.startswith("LimitNOFILE=")
    ]
    assert connection_limit(int(limit)) == CONNECTION_LIMIT
