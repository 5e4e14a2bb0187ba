"""The files ``gateway setup`` writes, and writing them without surprises.

``plan`` turns the administrator's answers into the files of a deployment: the configuration
file, the search token, the systemd unit and the user it runs as (``sysusers.d``), and the
Caddy site. The unit and the Caddyfile are the shipped ones (``gateway/deploy/``, which the
project's tests run and validate) with this machine's values filled in, so a setup and a
deployment by hand end up alike.

``write`` puts them below a root directory (``/`` on the machine itself): nothing is written
when a file exists with other content, unless told to replace it; a file that already holds
what would be written is left alone, so running setup twice changes nothing. The search token
is kept when its file exists (QueueMetrics is configured with it).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from importlib.resources import files
from pathlib import Path, PurePosixPath

import tomli_w

from gateway.configuration import parse_bind
from gateway.errors import ConfigError, UsageError

CONFIG_DIR = PurePosixPath("/etc/recording-gateway")
CONFIG_FILE = CONFIG_DIR / "gateway.toml"
TOKEN_FILE = CONFIG_DIR / "token"
SMB_PASSWORD_FILE = CONFIG_DIR / "smb-password"
ENVIRONMENT_FILE = CONFIG_DIR / "environment"
"""Variables for the service (S3 credentials), which systemd reads as root (the unit's
``EnvironmentFile=``)."""
UNIT_FILE = PurePosixPath("/etc/systemd/system/recording-gateway.service")
SYSUSERS_FILE = PurePosixPath("/etc/sysusers.d/recording-gateway.conf")
CADDYFILE = PurePosixPath("/etc/caddy/Caddyfile")
SERVICE_USER = "recording-gateway"
_HEADER = "# Written by `gateway setup`"


def shipped(name: str) -> str:
    """The text of a file of ``gateway/deploy/`` (installed with the package)."""
    return (files("gateway") / "deploy" / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Choices:
    """What a deployment is made of: the administrator's answers and what setup found."""

    public_url: str
    """``https://HOST[:PORT]``: the name QueueMetrics and the browsers reach."""
    path: str
    """The ``--path`` value: where the recordings are."""
    timezone: str
    layout: str | None
    """``None`` when ``path`` holds placeholders (the layout is in the path)."""
    gateway: tuple[str, ...]
    """The command that runs the gateway (this installation's ``gateway``), as words."""
    recordings_group: str | None = None
    """A group that may read the recordings (``asterisk``), which the service joins."""
    bind_to: str = "127.0.0.1:4000"


_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)"
"""A DNS name or an IP address: nothing that could end a Caddyfile address or add a line."""
_SITE = re.compile(rf"(?P<scheme>https?)://(?P<host>{_HOST})(?::(?P<port>[0-9]{{1,5}}))?/?")
_ADDRESS = re.compile(rf"{_HOST}:[0-9]{{1,5}}")


def check_public_url(url: str) -> str:
    """``http(s)://HOST[:PORT]``, the site Caddy serves, as written in the Caddyfile (a path
    below another site is not a site of its own: see docs/deployment.md)."""
    m = _SITE.fullmatch(url.strip())
    if m is None or int(m.group("port") or 1) > 65535:
        raise UsageError(
            f"--public-url takes https://HOST[:PORT] without a path, not {url!r}: setup writes "
            "a Caddy site for a whole name"
        )
    port = f":{m.group('port')}" if m.group("port") else ""
    return f"{m.group('scheme')}://{m.group('host').lower()}{port}"


def check_bind_to(address: str) -> str:
    """``--bind-to`` as setup writes it into the Caddyfile: ``HOST:PORT`` with a plain host."""
    parse_bind(address)
    if _ADDRESS.fullmatch(address.strip()) is None:
        raise UsageError(f"--bind-to takes an address and port (127.0.0.1:4000), not {address!r}")
    return address.strip()


@dataclass(frozen=True)
class Secrets:
    """What the deployment must keep secret."""

    token: str
    """The search token (QueueMetrics' ``searchtoken``)."""
    smb_password: str | None = None
    """The SMB share's password, when ``path`` is a share."""
    environment: Mapping[str, str] = field(default_factory=dict)
    """S3 credentials (``AWS_ACCESS_KEY_ID``...) for the service's environment."""


@dataclass(frozen=True)
class PlannedFile:
    """A file of the deployment, as it will be written."""

    path: PurePosixPath
    """Where it goes on the target system."""
    content: str
    mode: int
    what: str
    secret: bool = False
    """Never printed; written mode 0600, owned by root."""
    for_service: bool = False
    """A secret the gateway reads itself: its group may read it (0640) once it exists."""


def plan(choices: Choices, secrets: Secrets) -> list[PlannedFile]:
    """The files of a deployment for ``choices`` with ``secrets``."""
    planned = [
        PlannedFile(CONFIG_FILE, configuration(choices, secrets), 0o644, "configuration"),
        PlannedFile(
            TOKEN_FILE, secrets.token + "\n", 0o600, "search token", True, for_service=True
        ),
    ]
    if secrets.smb_password is not None:
        password = secrets.smb_password + "\n"
        planned.append(PlannedFile(SMB_PASSWORD_FILE, password, 0o600, "SMB password", True, True))
    if secrets.environment:
        variables = "".join(f"{k}={_quoted(v)}\n" for k, v in secrets.environment.items())
        planned.append(PlannedFile(ENVIRONMENT_FILE, variables, 0o600, "S3 credentials", True))
    return [
        *planned,
        PlannedFile(SYSUSERS_FILE, sysusers(choices), 0o644, "service user (systemd-sysusers)"),
        PlannedFile(UNIT_FILE, unit(choices), 0o644, "systemd unit"),
        PlannedFile(CADDYFILE, caddyfile(choices), 0o644, "Caddy site"),
    ]


def _quoted(value: str) -> str:
    """A value as systemd's ``EnvironmentFile=`` reads it back (double quotes, C escapes)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def configuration(choices: Choices, secrets: Secrets) -> str:
    """The TOML configuration ``gateway serve --config`` reads."""
    settings: dict[str, object] = {"path": [choices.path]}
    if choices.layout is not None:
        settings["layout"] = choices.layout
    settings.update(
        timezone=choices.timezone,
        bind_to=choices.bind_to,
        public_url=choices.public_url,
        token_file=str(TOKEN_FILE),
    )
    if secrets.smb_password is not None:
        settings["smb_password_file"] = str(SMB_PASSWORD_FILE)
    return (
        f"{_HEADER}: the settings of gateway serve, check and search (docs/operations.md).\n"
        + tomli_w.dumps(settings)
    )


def sysusers(choices: Choices) -> str:
    """The ``sysusers.d`` line of the service user (and its membership of the recordings'
    group)."""
    lines = [
        f"{_HEADER}: the user the recording gateway runs as (systemd-sysusers creates it).",
        f'u {SERVICE_USER} - "Recording gateway" /nonexistent /usr/sbin/nologin',
    ]
    if choices.recordings_group:
        lines.append(f"m {SERVICE_USER} {choices.recordings_group}")
    return "\n".join(lines) + "\n"


def unit(choices: Choices) -> str:
    """The shipped unit, running this installation's gateway on the written configuration."""
    values = {
        "ExecStart": " ".join(map(_unit_word, choices.gateway)) + f" serve --config {CONFIG_FILE}",
        "SupplementaryGroups": choices.recordings_group,
    }
    lines = [
        f"{_HEADER} from the shipped unit (docs/deployment.md explains each setting).",
        "# Start: systemctl daemon-reload && systemctl enable --now recording-gateway",
    ]
    for line in _below_comment(shipped("recording-gateway.service")):
        key = line.split("=", 1)[0]
        if key == "Documentation":
            continue  # names a file of a checkout of the repository
        if key in values:
            if values[key] is None:
                continue  # the recordings belong to root: no group to join
            line = f"{key}={values[key]}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _unit_word(word: str) -> str:
    """``word`` as one word of a unit's command line, as systemd reads it back (its ``%``
    specifiers and quotes escaped): a virtual environment in any folder. (The words are an
    executable's path and fixed arguments, where systemd expands no ``$`` variable.)"""
    word = word.replace("%", "%%")
    if re.search(r'[\s"\'\\;]', word) is None:
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def caddyfile(choices: Choices) -> str:
    """The shipped Caddyfile, serving the public name and passing it to the gateway."""
    text = "\n".join(_below_comment(shipped("Caddyfile"))) + "\n"
    filled = text.replace("{$GATEWAY_DOMAIN}", choices.public_url).replace(
        "{$GATEWAY_UPSTREAM:127.0.0.1:4000}", choices.bind_to
    )
    served = (
        "HTTPS for {} (a certificate from Let's Encrypt)"
        if choices.public_url.startswith("https://")
        else "plain HTTP for {}"
    ).format(choices.public_url)
    return (
        f"{_HEADER}: {served},\n"
        f"# passed to the gateway on {choices.bind_to}. The *_OPTIONS placeholders are empty in\n"
        "# production (the project's tests fill them to run this file on loopback ports).\n"
        + filled
    )


def _below_comment(text: str) -> list[str]:
    """A file's lines below its leading comment (which says how to install it by hand)."""
    lines = text.splitlines()
    first = next(n for n, line in enumerate(lines) if line and not line.startswith("#"))
    return lines[first:]


class State(Enum):
    """A planned file's target, before setup writes it."""

    NEW = "new"
    SAME = "unchanged"
    STOCK = "replaces the packaged default"
    DIFFERS = "exists with other content"
    UNREADABLE = "exists, not readable by this user"


def state(file: PlannedFile, root: Path) -> State:
    """What is at ``file``'s place below ``root`` now. A secret is the same when it holds the
    same value, whatever white space surrounds it (as the gateway reads a token). Refuses
    symbolic links (``check_no_links``)."""
    try:
        target = check_no_links(root, file.path)
        current = target.read_bytes()
    except FileNotFoundError:
        return State.NEW
    except PermissionError:
        return State.UNREADABLE
    except OSError as exc:
        raise ConfigError(f"cannot read {below(root, file.path)}: {exc.strerror}") from None
    wanted = file.content.encode("utf-8")
    if current == wanted or (file.secret and current.strip() == wanted.strip()):
        return State.SAME
    if _unmodified_package_file(file.path, current):
        return State.STOCK
    return State.DIFFERS


def below(root: Path, path: PurePosixPath) -> Path:
    """Where the system path ``path`` lies below ``root``."""
    return root / path.relative_to("/")


def check_no_links(root: Path, path: PurePosixPath) -> Path:
    """``path`` below ``root``, refused (``ConfigError``) when it or a folder on the way below
    ``root`` is a symbolic link: setup reads and writes only what lies where it says."""
    target = below(root, path)
    place = root
    for part in path.relative_to("/").parts:
        place = place / part
        if place.is_symlink():
            raise ConfigError(
                f"{place} is a symbolic link: setup writes only real files and folders "
                "(remove the link, or give another --root)"
            )
    return target


@functools.cache
def _unmodified_package_file(path: PurePosixPath, content: bytes) -> bool:
    """Whether ``content`` is what a Debian package installed at ``path`` and nobody changed
    (Debian's caddy package puts a placeholder site in /etc/caddy/Caddyfile): dpkg keeps the
    MD5 of each configuration file it installed."""
    try:
        owner = subprocess.run(
            ["dpkg-query", "--search", str(path)], capture_output=True, text=True, check=False
        )
        package = owner.stdout.split(":", 1)[0].strip()
        if owner.returncode != 0 or not package:
            return False
        listed = subprocess.run(
            ["dpkg-query", "--showformat=${Conffiles}", "--show", package],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:  # not a Debian system
        return False
    digest = hashlib.md5(content, usedforsecurity=False).hexdigest()
    return any(
        line.split()[:2] == [str(path), digest] for line in listed.stdout.splitlines() if line
    )


def write(files_: list[PlannedFile], root: Path, *, force: bool) -> dict[PurePosixPath, State]:
    """Write ``files_`` below ``root``, each replaced at once. Nothing is written when one
    exists with other content and ``force`` is not set, or cannot be read (``ConfigError``
    naming them); an error while writing leaves the files written before it. Returns each
    file's state before."""
    states = {file.path: state(file, root) for file in files_}
    unreadable = [str(path) for path, s in states.items() if s is State.UNREADABLE]
    if unreadable:
        raise ConfigError(f"cannot read {', '.join(unreadable)}: run setup as root")
    clashes = [str(path) for path, s in states.items() if s is State.DIFFERS]
    if clashes and not force:
        raise ConfigError(
            f"already there with other content: {', '.join(clashes)}; nothing was written "
            "(--force replaces them; --print shows what would be written)"
        )
    for file in files_:
        if states[file.path] is not State.SAME:
            target = below(root, file.path)
            try:
                _write_file(target, file.content, file.mode)
            except OSError as exc:
                raise ConfigError(
                    f"cannot write {target}: {exc.strerror} (run setup as root, or give --root)"
                ) from None
    return states


def _write_file(target: Path, content: str, mode: int) -> None:
    """Replace ``target`` at once (a reader sees the old file or the new one, never half).
    Folders it makes are 0755 whatever the umask: the service and Caddy must reach their
    files (the secrets among them are protected by their own modes)."""
    missing = [folder for folder in target.parents if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir()
        folder.chmod(0o755)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(content)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
