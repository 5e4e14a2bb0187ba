"""The steps of ``gateway setup`` (``gateway.cli.setup``): a deployment in one command.

Asks for (or takes as flags) the public URL, where the recordings are and the PBX's time zone;
looks at the archive and proposes its layout, timing a search for a recording it found; writes
the configuration, the search token, the service user, the systemd unit and the Caddy site
(``gateway.setup_plan``), after saying what it will write; runs ``gateway check`` on the result
and prints the QueueMetrics properties to paste. ``--print`` only shows what it would write;
``--root DIR`` writes below DIR instead of ``/``.
"""

from __future__ import annotations

import grp
import logging
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, time
from pathlib import Path, PurePosixPath
from time import perf_counter
from urllib.parse import quote

import click

from gateway.cli.output import terminal_safe
from gateway.configuration import configure, prepare_server
from gateway.errors import ConfigError, Unavailable, UsageError
from gateway.placeholders import has_placeholders
from gateway.query import Query, call_start, parse_timezone
from gateway.secret_files import read_secret_file
from gateway.setup_plan import (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    SERVICE_USER,
    SMB_PASSWORD_FILE,
    SYSUSERS_FILE,
    TOKEN_FILE,
    Choices,
    PlannedFile,
    Secrets,
    State,
    below,
    check_bind_to,
    check_no_links,
    check_public_url,
    plan,
    state,
    write,
)
from gateway.sources import StoreSource
from gateway.sourceurl import SourceURL, redact_url, split_scheme, without_password
from gateway.survey import Survey, survey

log = logging.getLogger("gateway")
_SMB_PASSWORD_ENV = "GATEWAY_SMB_PASSWORD"  # noqa: S105 (gateway_smb's variable, by name)
_S3_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_CANNOT_RUN = (126, 127)
"""runuser's exit statuses when the command could not be run at all."""
_LOCATIONS = ("/var/spool/asterisk/monitor", "/var/lib/freeswitch/recordings")
"""Where FreePBX/Issabel and FusionPBX keep recordings: the first that exists is proposed."""


def set_up(
    public_url: str | None,
    path: str | None,
    timezone: str | None,
    layout: str | None,
    bind_to: str,
    root: Path,
    print_only: bool,
    force: bool,
) -> None:
    """Ask what is missing, survey, write, check, and print the QueueMetrics properties."""
    root = Path(os.path.realpath(root))
    on_this_machine = root == Path("/")
    asked = public_url is None or path is None or timezone is None
    if public_url is None:
        public_url = click.prompt("Public URL of the gateway (https://HOST)")
    site = check_public_url(public_url)
    if path is None:
        path = click.prompt("Where are the recordings", default=_proposed_location())
    if timezone is None:
        timezone = click.prompt("Time zone of the PBX", default=parse_timezone(None).key)
    parse_timezone(timezone)
    bind_to = check_bind_to(bind_to)
    _warn_about_exposure(site, bind_to)
    configured_path, kept = _secrets(root, _one_source(path), must_read=not print_only)
    if layout is None and not has_placeholders(path):
        layout = _propose_layout(configured_path, timezone)
    _validate(configured_path, layout, timezone, bind_to, site, kept.token)
    choices = Choices(
        public_url=site,
        path=configured_path,
        timezone=timezone,
        layout=layout,
        gateway=_this_gateway(),
        recordings_group=_group_of(configured_path),
        bind_to=bind_to,
    )
    files = plan(choices, kept)
    _show_plan(files, root)
    if print_only:
        _print_files(files)
        _print_properties(site, None)
        return
    if asked and not click.confirm("Write these files?", default=True):
        raise click.Abort
    states = write(files, root, force=force)
    if all(s is State.SAME for s in states.values()):
        click.echo("Nothing to change: every file already holds what setup would write.")
    if on_this_machine:
        _create_service_user([f.path for f in files if f.for_service])
        status = _check_as_service(choices.gateway, kept)
    else:
        status = _check(root, choices.gateway, kept)
    _print_properties(site, kept.token)
    _print_next_steps(root)
    if status:
        raise SystemExit(status)


def _one_source(path: str) -> str:
    """The one source of ``path``, a local folder made absolute (the service runs in /)."""
    items = [item.strip() for item in path.split(",") if item.strip()]
    if len(items) != 1:
        raise UsageError(
            "setup takes one source in --path (add more to the configuration file afterwards)"
        )
    scheme, location = split_scheme(items[0], "file")
    if scheme == "file" and not location.startswith("//"):
        return os.path.abspath(location)
    return items[0]


def _warn_about_exposure(site: str, bind_to: str) -> None:
    if site.startswith("http://"):
        log.warning(
            "%s is plain HTTP: the search token and the links travel unencrypted (use "
            "https:// unless QueueMetrics reaches the gateway on a closed network)",
            site,
        )
    host = bind_to.rpartition(":")[0].strip("[]")
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.warning(
            "--bind-to %s: the gateway answers there without TLS; only Caddy should face "
            "the network",
            bind_to,
        )


def _secrets(root: Path, path: str, *, must_read: bool) -> tuple[str, Secrets]:
    """The ``path`` to configure (without a password) and the secrets to write; the secrets
    also go into this process's environment, so that the survey and the check use them.

    The token already written is kept (QueueMetrics is configured with it), else a new one is
    made. An SMB password comes from the URL, else ``GATEWAY_SMB_PASSWORD``, else the file
    written before; S3 credentials from the ``AWS_*`` variables setup runs with, else the
    environment file written before. Without ``must_read`` (``--print``), a file written before
    that cannot be read (setup may run as a user that may not) counts as absent.
    """
    token = _written(root, TOKEN_FILE, must_read) or secrets.token_urlsafe(32)
    scheme = split_scheme(path, "file")[0]
    if scheme == "smb":
        password = SourceURL.parse(path).password or os.environ.get(_SMB_PASSWORD_ENV)
        if password is None:
            password = _written(root, SMB_PASSWORD_FILE, must_read, keep_spaces=True)
        if password is not None:
            os.environ[_SMB_PASSWORD_ENV] = password
        return without_password(path), Secrets(token, smb_password=password)
    if scheme == "s3":
        found = {name: os.environ[name] for name in _S3_VARIABLES if os.environ.get(name)}
        if not found:
            found = _written_environment(root, must_read)
        os.environ.update(found)
        return path, Secrets(token, environment=found)
    return path, Secrets(token)


def _written(
    root: Path, path: PurePosixPath, must_read: bool, *, keep_spaces: bool = False
) -> str | None:
    """The secret a file written before holds (one line of printable text), or ``None``."""
    text = _read_written(root, path, must_read, keep_spaces=keep_spaces)
    if text is not None and not text.isprintable():
        raise ConfigError(f"{below(root, path)} does not hold one line of text: remove it")
    return text


def _written_environment(root: Path, must_read: bool) -> dict[str, str]:
    """The variables of the environment file written before (as ``plan`` writes them)."""
    text = _read_written(root, ENVIRONMENT_FILE, must_read, keep_spaces=True)
    variables = {}
    for line in (text or "").splitlines():
        name, _, value = line.partition("=")
        if name in _S3_VARIABLES:
            try:
                variables[name] = "".join(shlex.split(value))
            except ValueError:
                raise ConfigError(
                    f"{below(root, ENVIRONMENT_FILE)}: {name} is not a quoted value"
                ) from None
    return variables


def _read_written(
    root: Path, path: PurePosixPath, must_read: bool, *, keep_spaces: bool
) -> str | None:
    try:
        target = check_no_links(root, path)
        if not target.exists():
            return None
        return read_secret_file(target, f"existing {target.name} file", keep_spaces=keep_spaces)
    except (UsageError, PermissionError):
        if must_read:
            raise
        return None


def _validate(
    path: str, layout: str | None, timezone: str, bind_to: str, site: str, token: str
) -> None:
    """Refuse settings ``gateway serve`` would refuse, before anything is written."""
    settings = {"path": path, "layout": layout, "timezone": timezone, "bind_to": bind_to}
    prepared = prepare_server(
        {**settings, "public_url": site, "token": token}, given=frozenset({"token"})
    )
    prepared.close()


def _proposed_location() -> str:
    return next((p for p in _LOCATIONS if Path(p).is_dir()), _LOCATIONS[0])


def _propose_layout(path: str, timezone: str) -> str:
    """Survey the archive, show what was found and how long a search takes; the layout."""
    configured = configure({"path": path, "timezone": timezone})
    try:
        (source,) = configured.sources
        if not isinstance(source, StoreSource):
            raise UsageError(f"setup serves a store, not another gateway ({redact_url(path)})")
        found = survey(source.store)
    finally:
        configured.close()
    click.echo(terminal_safe(f"Recordings in {redact_url(path)}: {found.reason}."))
    click.echo(f"Proposed layout: {found.layout} (--layout chooses another).")
    _time_searches(found, path, timezone)
    return found.layout


def _time_searches(found: Survey, path: str, timezone: str) -> None:
    """Search each sample as QueueMetrics would (call id and time) and say how long it took.
    The time is the one in the call id, else noon of the day folder it lies in, else its
    file's time."""
    if not found.samples:
        click.echo("  No recording with a call id in its name was found to try a search with.")
        return
    zone = parse_timezone(timezone)
    configured = configure({"path": path, "timezone": timezone, "layout": found.layout})
    try:
        for sample in found.samples:
            noon = datetime.combine(sample.day, time(12), zone) if sample.day else None
            start = call_start(sample.callid) or noon or sample.mtime
            began = perf_counter()
            result = configured.searcher.find(Query(sample.callid, start=start))
            took = (perf_counter() - began) * 1000
            click.echo(f"  {terminal_safe(sample.key)}")
            if result.recordings:
                click.echo(
                    f"    search for call {sample.callid}: {len(result.recordings)} file(s) "
                    f"in {took:.1f} ms"
                )
            else:
                click.echo(
                    f"    search for call {sample.callid} found nothing in {took:.1f} ms: "
                    "this layout may not fit (see gateway search --explain)"
                )
    finally:
        configured.close()


def _this_gateway() -> tuple[str, ...]:
    """The ``gateway`` command of this installation (its virtual environment's)."""
    beside = Path(sys.executable).parent / "gateway"
    return (str(beside),) if beside.exists() else (sys.executable, "-m", "gateway")


def _group_of(path: str) -> str | None:
    """The group owning a local recordings folder (``asterisk``), unless it is root's; a
    local folder is absolute once ``_one_source`` has read it, a share or bucket is not."""
    folder = Path(path)
    if not folder.is_absolute():
        return None
    try:
        gid = folder.stat().st_gid
        return None if gid == 0 else grp.getgrgid(gid).gr_name
    except (OSError, KeyError):
        return None  # not a local folder, or a group without a name


def _show_plan(files: list[PlannedFile], root: Path) -> None:
    where = "" if root == Path("/") else f" below {root}"
    click.echo(f"Setup writes{where}:")
    for file in files:
        now = state(file, root)
        said = "unchanged (kept)" if file.secret and now is State.SAME else now.value
        click.echo(f"  {file.path}  ({file.mode:04o}, {file.what}): {said}")


def _print_files(files: list[PlannedFile]) -> None:
    for file in files:
        click.echo(f"\n==> {file.path} <==")
        click.echo(f"<the {file.what}: not shown>" if file.secret else file.content, nl=False)
        if file.secret:
            click.echo()


def _create_service_user(readable: list[PurePosixPath]) -> None:
    """Create the service user from the sysusers file; let its group read ``readable``."""
    tool = shutil.which("systemd-sysusers")
    missing = (
        f"create the user {SERVICE_USER} as {SYSUSERS_FILE} says, then give it "
        f"{', '.join(map(str, readable))} (chgrp {SERVICE_USER}, chmod 0640): the service "
        "cannot read them until then"
    )
    if tool is None:
        log.warning("there is no systemd-sysusers: %s", missing)
        return
    click.echo(f"Creating the service user: {tool} {SYSUSERS_FILE}")
    done = subprocess.run([tool, str(SYSUSERS_FILE)], capture_output=True, text=True)
    try:
        gid = grp.getgrnam(SERVICE_USER).gr_gid
    except KeyError:
        log.warning("systemd-sysusers failed (%s): %s", done.stderr.strip(), missing)
        return
    for path in readable:
        os.chown(path, 0, gid)
        os.chmod(path, 0o640)


def _check(root: Path, gateway: tuple[str, ...], kept: Secrets) -> int:
    """``gateway check`` on the configuration written below ``root``, with its secrets'
    files below ``root`` too; its exit status."""
    click.echo(f"\n$ gateway check --config {CONFIG_FILE}")
    arguments = ["check", "--config", str(below(root, CONFIG_FILE))]
    arguments += ["--token-file", str(below(root, TOKEN_FILE))]
    if kept.smb_password is not None:
        arguments += ["--smb-password-file", str(below(root, SMB_PASSWORD_FILE))]
    return subprocess.run([*gateway, *arguments], env=_service_environment(kept)).returncode


def _check_as_service(gateway: tuple[str, ...], kept: Secrets) -> int:
    """``gateway check`` run as the service will run: as its user, with its environment."""
    click.echo(f"\n$ runuser -u {SERVICE_USER} -- gateway check --config {CONFIG_FILE}")
    command = [*gateway, "check", "--config", str(CONFIG_FILE)]
    runuser = shutil.which("runuser")
    if runuser is None:
        log.warning("there is no runuser: the check runs as %s", os.environ.get("USER", "root"))
    else:
        command = [runuser, "-u", SERVICE_USER, "--", *command]
    status = subprocess.run(command, env=_service_environment(kept)).returncode
    if status in _CANNOT_RUN:
        log.warning(
            "%s cannot run %s: install the gateway where every user may read it, as the README "
            "says (a virtual environment below /root is not)",
            SERVICE_USER,
            gateway[0],
        )
        return Unavailable.exit_code
    return status


def _service_environment(kept: Secrets) -> dict[str, str]:
    """The environment the service has: none of the administrator's variables (a
    ``GATEWAY_TOKEN`` would hide an unreadable token file), the S3 credentials of its
    environment file."""
    basic = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {**basic, **kept.environment}


def _print_properties(site: str, token: str | None) -> None:
    """The properties to paste; with the token, or naming its file when it is ``None``."""
    shown = f"<the token in {TOKEN_FILE}>" if token is None else _property(token)
    in_url = f"<the token in {TOKEN_FILE}>" if token is None else quote(token, safe="")
    click.echo(
        "\nQueueMetrics properties (configuration.properties or the system parameters page):\n"
        "\n"
        "audio.server=it.loway.app.queuemetrics.callListen.listeners.JsonListener\n"
        f"audio.jsonlistener.url={site}/search/\n"
        "audio.jsonlistener.method=POST\n"
        f"audio.jsonlistener.searchtoken={shown}\n"
        "audio.jsonlistener.verbose=false\n"
        "audio.html5player=true\n"
        "\n"
        "or, for QueueMetrics' XML-RPC remote audio server (docs/queuemetrics.md):\n"
        "\n"
        f"default.audioRpcServer={site}/xmlrpc?token={in_url}"
    )


def _property(value: str) -> str:
    """A value as a Java properties file reads it back."""
    return value.replace("\\", "\\\\")


def _print_next_steps(root: Path) -> None:
    if root == Path("/"):
        click.echo(
            "\nStart it: systemctl daemon-reload && systemctl enable --now recording-gateway"
            " && systemctl reload caddy"
        )
    else:
        click.echo(f"\nThe files are below {root}; the token is readable by root only (0600).")
