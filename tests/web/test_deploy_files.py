"""The deployment files in deploy/ are valid for the tools that read them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import click
import pytest

from gateway.cli import main
from gateway.config_file import read_config
from gateway.configuration import DEFAULT_STOP_TIMEOUT
from gateway.web.capacity import CONNECTION_LIMIT, connection_limit
from gateway.web.drain import THREADS_TIMEOUT
from tests.web.conftest import systemd_problems

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


UNITS = ["recording-gateway.service", "recording-gateway@.service"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("name", UNITS)
def test_systemd_unit_is_valid(tmp_path: Path, name: str) -> None:
    unit = tmp_path / name
    # verify resolves ExecStart: point it at this checkout's gateway command
    text = (DEPLOY / name).read_text()
    gateway = shutil.which("gateway") or str(Path(__import__("sys").executable).parent / "gateway")
    unit.write_text(text.replace("/opt/recording-gateway/.venv/bin/gateway", gateway))
    assert systemd_problems(unit) == []


def _settings(name: str) -> list[str]:
    """A unit's lines below its leading comment."""
    lines = (DEPLOY / name).read_text().splitlines()
    return lines[lines.index("[Unit]") :]


def test_the_template_unit_is_the_unit_with_a_port_per_instance() -> None:
    single, template = _settings(UNITS[0]), _settings(UNITS[1])
    differ = [(a, b) for a, b in zip(single, template, strict=True) if a != b]
    assert [(a.split("=")[0], b[len(a) :]) for a, b in differ if b.startswith(a)] == [
        ("ExecStart", " --bind-to 127.0.0.1:%i")
    ]
    assert [b for a, b in differ if not b.startswith(a)] == [
        "Description=Recording gateway on port %i: call recordings for QueueMetrics "
        "through signed links"
    ]


@pytest.mark.parametrize("name", UNITS)
def test_systemd_waits_for_a_graceful_stop(name: str) -> None:
    (value,) = [line[15:] for line in _settings(name) if line.startswith("TimeoutStopSec=")]
    assert int(value.removesuffix("s")) > DEFAULT_STOP_TIMEOUT + THREADS_TIMEOUT
    assert not any(line.startswith("KillSignal=") for line in _settings(name))  # SIGTERM


def test_systemd_unit_allows_descriptors_for_every_connection() -> None:
    text = (DEPLOY / "recording-gateway.service").read_text()
    (limit,) = [
        line.split("=", 1)[1] for line in text.splitlines() if line.startswith("LimitNOFILE=")
    ]
    assert connection_limit(int(limit)) == CONNECTION_LIMIT


@pytest.mark.parametrize("name", UNITS)
def test_the_service_may_read_the_token_file_the_guide_makes(name: str) -> None:
    """deployment.md gives the token file to a group: the unit's process must be in it.
    (systemd gives a service its Group= and SupplementaryGroups=, not the user's own group.)"""
    guide = (DEPLOY.parent / "docs" / "deployment.md").read_text()
    (token_group,) = set(re.findall(r"chgrp (\S+) /etc/recording-gateway/token", guide))
    settings = dict(line.split("=", 1) for line in _settings(name) if "=" in line)
    groups = {settings["Group"], *settings.get("SupplementaryGroups", "").split()}
    assert token_group in groups
