"""The configuration file: TOML whose keys are the long option names with underscores.

    # /etc/recording-gateway.toml
    path = ["file:/var/spool/asterisk/monitor", "smb://rec@nas/calls/%YY/%MM/%DD"]
    layout = "freepbx"
    timezone = "Europe/Rome"
    bind_to = "localhost:4000"
    public_url = "https://audiovault.example.com"
    token_file = "/etc/recording-gateway/token"

    [option]          # --option KEY=VALUE
    smb_timeout = "5"

Every command takes ``--config FILE`` (or ``GATEWAY_CONFIG``). Precedence: a flag on the command
line, then an environment variable, then the file, then the built-in default. A key that no
command knows is an error (a typo must not be ignored silently); a key that only another
command uses (``bind_to`` for ``gateway search``) is ignored, so one file serves them all.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import click

from gateway.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_ENV = "GATEWAY_CONFIG"


def read_config(path: Path) -> dict[str, Any]:
    """The file's settings, with lists and tables turned into what the options take."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no configuration file {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the configuration file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    settings: dict[str, Any] = {}
    for key, value in data.items():
        if key == "path" and isinstance(value, list):
            value = ",".join(str(v) for v in value)
        elif key == "option" and isinstance(value, Mapping):
            value = [f"{k}={v}" for k, v in value.items()]
        elif isinstance(value, Mapping):
            raise ConfigError(f"{path}: [{key}] is not a known table (only [option] is)")
        settings[key] = value
    return settings


def _option_names(command: click.Command) -> dict[str, str]:
    """Long option name with underscores -> parameter name (``option`` -> ``store_options``)."""
    names: dict[str, str] = {}
    for param in command.params:
        if isinstance(param, click.Option) and param.name:
            for opt in param.opts:
                if opt.startswith("--"):
                    names[opt[2:].replace("-", "_")] = param.name
    return names


def _all_option_names(ctx: click.Context) -> set[str]:
    root = ctx.find_root().command
    commands = getattr(root, "commands", {}).values()
    return {name for command in commands for name in _option_names(command)}


def _apply(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if not value:
        return
    settings = read_config(Path(value))
    unknown = sorted(set(settings) - _all_option_names(ctx) - {"config"})
    if unknown:
        raise ConfigError(f"{value}: unknown setting(s) {', '.join(unknown)}")
    mine = _option_names(ctx.command)
    defaults = dict(ctx.default_map or {})
    defaults.update({mine[k]: v for k, v in settings.items() if k in mine})
    ctx.default_map = defaults


def config_option(command: F) -> F:
    """Add ``--config FILE`` to a command; it is read before every other option."""
    return click.option(
        "--config",
        type=click.Path(dir_okay=False),
        envvar=CONFIG_ENV,
        is_eager=True,
        expose_value=False,
        callback=_apply,
        help=f"TOML file of settings (keys: the long option names with underscores; "
        f"also {CONFIG_ENV}). Flags and environment variables win over it.",
    )(command)
