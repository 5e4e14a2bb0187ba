"""The ``gateway`` command: search, get, plugins, demo (and serve, in gateway.web).

Exit statuses: 0 found/done, 1 nothing found, 2 usage or configuration error, 3 a store could
not be reached or refused the credentials. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from gateway import __version__
from gateway.config_file import config_option
from gateway.errors import GatewayError, NotFound, UsageError
from gateway.plugins import Plugins, load_plugins
from gateway.query import Query, parse_timestamp, parse_timezone
from gateway.recordings import Recording
from gateway.search import SearchSettings, search
from gateway.sources import StoreSource, open_sources

F = TypeVar("F", bound=Callable[..., Any])
INTERNAL_ERROR = 70


class GatewayGroup(click.Group):
    """Turns the project's errors into one stderr line and the documented exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GatewayError as exc:
            fail(str(exc), exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except BrokenPipeError:
            sys.exit(1)
        except Exception as exc:  # never a traceback in front of a user
            logging.getLogger("gateway").debug("internal error", exc_info=True)
            fail(f"internal error: {type(exc).__name__}", INTERNAL_ERROR)


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"gateway: error: {message}", err=True)
    sys.exit(code)


@click.group(cls=GatewayGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gateway")
def main() -> None:
    """Find call recordings on disk, SMB or S3 and serve them through signed links."""
    logging.basicConfig(level=logging.WARNING, format="gateway: warning: %(message)s")


@dataclass(frozen=True)
class Configured:
    """The sources and search settings that the source options describe."""

    plugins: Plugins
    sources: list[StoreSource]
    settings: SearchSettings

    def close(self) -> None:
        for source in self.sources:
            source.close()


def source_options(command: F) -> F:
    """The options that say where recordings are and how they are laid out."""
    decorators = [
        config_option,
        click.option(
            "--path",
            required=True,
            help="Comma-separated sources, tried first to last: FOLDER, file:FOLDER, "
            "smb://HOST/SHARE/PATH, s3://BUCKET/PREFIX; may hold %YY %MM %DD %ME %TE.",
        ),
        click.option(
            "--backend",
            help="Storage for sources given without a scheme (default: local).",
        ),
        click.option(
            "--layout",
            help="How recordings are filed below a source without placeholders: flat "
            "(default), freepbx, fusionpbx, or one a plugin adds (see 'gateway plugins').",
        ),
        click.option(
            "--timezone",
            help="The PBX's IANA time zone, for placeholders and day folders "
            "(default: this machine's).",
        ),
        click.option(
            "--lookback",
            type=click.FloatRange(0, 24),
            default=4.0,
            show_default=True,
            help="Hours: also search the neighbouring day for calls this close to midnight.",
        ),
        click.option(
            "--search-all",
            is_flag=True,
            help="Search every source and return all matches (default: stop at the first "
            "source that finds the call).",
        ),
        click.option(
            "--option",
            "store_options",
            multiple=True,
            metavar="KEY=VALUE",
            help="A store option, passed to the store plugins (repeatable).",
        ),
        click.option(
            "--smb-password-file",
            type=click.Path(exists=True, dir_okay=False),
            help="File holding the SMB password (instead of GATEWAY_SMB_PASSWORD).",
        ),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def configure(params: dict[str, Any]) -> Configured:
    """Build plugins, sources and settings from the values of ``source_options``."""
    options: dict[str, str] = {}
    for item in params.get("store_options") or ():
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--option takes KEY=VALUE, not {item!r}")
        options[key.strip()] = value
    if params.get("smb_password_file"):
        options["smb_password_file"] = params["smb_password_file"]
    plugins = load_plugins()
    sources = open_sources(
        params["path"],
        plugins,
        backend=params.get("backend"),
        layout=params.get("layout"),
        options=options,
    )
    settings = SearchSettings(
        timezone=parse_timezone(params.get("timezone")),
        lookback=timedelta(hours=params.get("lookback", 4.0)),
        search_all=bool(params.get("search_all")),
    )
    return Configured(plugins, sources, settings)


def call_options(command: F) -> F:
    """The options that describe the call to find."""
    decorators = [
        click.option("--callid", help="The call's unique id (Asterisk uniqueid, FreeSWITCH uuid)."),
        click.option(
            "--timestamp",
            help="Start of the call: epoch seconds, ISO 8601 or 2000-01-01.00:00:00 "
            "(a time without a zone is read in --timezone).",
        ),
        click.option("--tenant", help="Tenant of the call, fills %TE."),
        click.option("--queue", help="Queue of the call (passed to layouts that use it)."),
        click.option("--agent", help="Agent of the call (passed to layouts that use it)."),
        click.option("--server", help="PBX server id (passed to layouts that use it)."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def make_query(params: dict[str, Any], configured: Configured) -> Query:
    callid = params.get("callid")
    if callid is None:
        raise UsageError("--callid is required")
    start = None
    if params.get("timestamp"):
        start = parse_timestamp(params["timestamp"], configured.settings.timezone)
    return Query(
        callid=callid,
        start=start,
        tenant=params.get("tenant"),
        queue=params.get("queue"),
        agent=params.get("agent"),
        server=params.get("server"),
    )


def with_sources(command: Callable[..., None]) -> Callable[..., None]:
    """Configure sources from the command's options and close them afterwards."""

    @functools.wraps(command)
    def wrapper(**params: Any) -> None:
        configured = configure(params)
        try:
            command(configured, **params)
        finally:
            configured.close()

    return wrapper


@main.command("search")
@source_options
@call_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the files.")
@with_sources
def search_command(configured: Configured, as_json: bool, **params: Any) -> None:
    """Find the recordings of a call."""
    recordings = search(configured.sources, make_query(params, configured), configured.settings)
    if as_json:
        click.echo(json.dumps([r.to_json() for r in recordings], indent=2))
    else:
        for r in recordings:
            flag = "  (empty)" if r.empty else ""
            when = r.mtime.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            click.echo(f"{r.name}\t{r.key}\t{r.size}\t{when}\t{r.mime}{flag}")
    if not recordings:
        fail(f"no recordings found for call {params['callid']!r}", 1)


@main.command("get")
@source_options
@call_options
@click.option("--key", help="Fetch this store key directly instead of searching a call.")
@click.option(
    "-o",
    "--output",
    required=True,
    help="Where to write: a file, or a folder when several files match; '-' for stdout.",
)
@with_sources
def get_command(configured: Configured, key: str | None, output: str, **params: Any) -> None:
    """Fetch the recordings of a call (or one key) to a file or folder."""
    if key is not None:
        if params.get("callid"):
            raise UsageError("give either --key or --callid, not both")
        found = [_stat_key(configured, key)]
    else:
        query = make_query(params, configured)
        found = search(configured.sources, query, configured.settings)
        if not found:
            fail(f"no recordings found for call {params['callid']!r}", 1)
    source_of = {s.id: s for s in configured.sources}
    if output == "-":
        if len(found) > 1:
            raise UsageError(f"{len(found)} files match: give -o a folder, not '-'")
        for chunk in source_of[found[0].source].store.open(found[0].key):
            sys.stdout.buffer.write(chunk)
        return
    target = Path(output)
    if len(found) > 1 or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        destinations = [target / r.name for r in found]
    else:
        destinations = [target]
    for recording, destination in zip(found, destinations, strict=True):
        _write(source_of[recording.source].store.open(recording.key), destination)
        click.echo(f"{destination}\t{recording.size}")


def _stat_key(configured: Configured, key: str) -> Recording:
    for source in configured.sources:
        source.check()
        try:
            entry = source.store.stat(key)
        except NotFound:
            continue
        try:
            return Recording.from_entry(source.id, entry)
        except ValueError:
            raise UsageError(f"{key!r} is not an audio file") from None
    raise NotFound(f"no source has the key {key!r}")


def _write(chunks: Iterator[bytes], destination: Path) -> None:
    """Write atomically: a partial download never takes the place of a good file."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


@main.command("plugins")
@config_option
def plugins_command() -> None:
    """List the installed storage schemes and layouts, with their packages."""
    plugins = load_plugins()
    click.echo("Storage schemes:")
    for scheme, p in sorted(plugins.stores.items()):
        aliases = f" (also --backend {', '.join(p.item.aliases)})" if p.item.aliases else ""
        click.echo(f"  {scheme:<10} {p.package} [{p.plugin}]{aliases}: {p.item.description}")
    click.echo("Layouts:")
    for name, lp in sorted(plugins.layouts.items()):
        click.echo(f"  {name:<10} {lp.package} [{lp.plugin}]: {lp.item.description}")
    for failure in plugins.failures:
        click.echo(f"Failed: {failure.plugin} from {failure.package}: {failure.error}")
    for name in plugins.blocked:
        click.echo(f"Blocked: {name}")


@main.command("demo")
@click.argument("folder", type=click.Path(file_okay=False))
@config_option
@click.option("--days", type=click.IntRange(1, 60), default=3, show_default=True)
@click.option("--end", "end", help="Last day of the archive, YYYY-MM-DD (default: today).")
@click.option("--timezone", help="Time zone the demo PBX files its calls in.")
@click.option("--json", "as_json", is_flag=True, help="Print the calls as JSON.")
def demo_command(
    folder: str, days: int, end: str | None, timezone: str | None, as_json: bool
) -> None:
    """Write a small demo archive (FreePBX layout) to FOLDER and list its calls."""
    from gateway.demo import write_demo

    tz = parse_timezone(timezone)
    try:
        last = date.fromisoformat(end) if end else datetime.now(tz).date()
    except ValueError:
        raise UsageError(f"--end takes a date like 2026-03-09, not {end!r}") from None
    root = Path(folder)
    if root.exists() and any(root.iterdir()) and not (root / "demo.json").exists():
        raise UsageError(f"{root} is not empty and is not a demo archive: choose another folder")
    calls = write_demo(root, end=last, days=days, tz=tz)
    listing = [{"callid": c.callid, "start": c.start.isoformat(), "files": c.files} for c in calls]
    (root / "demo.json").write_text(json.dumps(listing, indent=2))
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    click.echo(
        f"Wrote {sum(len(c.files) for c in calls)} recordings of {len(calls)} calls to {root}"
    )
    for call in calls:
        click.echo(f"  --callid {call.callid} --timestamp {call.start.isoformat()}")


from gateway.web.command import serve_command  # noqa: E402 (it imports this module: keep last)

main.add_command(serve_command)
