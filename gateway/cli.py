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
from collections.abc import Callable, Iterator, Sequence
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
from gateway.remote import DEFAULT_PEER_TIMEOUT, SiteError, check_site_name
from gateway.search import SearchSettings, find_call
from gateway.sources import Source, StoreSource, open_sources

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
    sources: list[Source]
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
            "--peer-timeout",
            type=click.FloatRange(0.1, 300),
            default=DEFAULT_PEER_TIMEOUT,
            show_default=True,
            help="Seconds the other gateways in --path (gateway+https://...) get to answer "
            "a search, all together.",
        ),
        click.option(
            "--site-name",
            help="This gateway's site name in federated answers and loop detection "
            "(letters, digits, '.', '_', ':', '-'; see docs/federation.md).",
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
        peer_timeout=params.get("peer_timeout", DEFAULT_PEER_TIMEOUT),
    )
    site = params.get("site_name")
    settings = SearchSettings(
        timezone=parse_timezone(params.get("timezone")),
        lookback=timedelta(hours=params.get("lookback", 4.0)),
        search_all=bool(params.get("search_all")),
        peer_timeout=params.get("peer_timeout", DEFAULT_PEER_TIMEOUT),
        site=check_site_name(site) if site else None,
        proxy_peers=bool(params.get("proxy_peers")),
    )
    return Configured(plugins, sources, settings)


def proxy_peers_option(command: F) -> F:
    """``gateway serve --proxy-peers`` (federation; read by ``configure``)."""
    return click.option(
        "--proxy-peers",
        is_flag=True,
        help="Give this gateway's own links for files found at other sites and stream them "
        "through it (default: hand out the sites' links, the browser downloads from them).",
    )(command)


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
    result = find_call(configured.sources, make_query(params, configured), configured.settings)
    recordings = result.recordings
    if as_json:
        click.echo(json.dumps([r.to_json() for r in recordings], indent=2))
    else:
        for r in recordings:
            flag = "  (empty)" if r.empty else ""
            when = r.mtime.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            click.echo(f"{r.name}\t{r.key}\t{r.size}\t{when}\t{r.mime}{flag}")
    _report_site_errors(result.errors, found=bool(recordings))
    if not recordings:
        fail(f"no recordings found for call {params['callid']!r}", 1)


def _report_site_errors(errors: Sequence[SiteError], *, found: bool) -> None:
    """Sites that could not be searched: warnings, or exit status 3 when nothing was found."""
    for error in errors:
        click.echo(f"gateway: warning: site {error.site or 'local'}: {error.error}", err=True)
    if errors and not found:
        fail("no recordings found, and some sites could not be searched", 3)


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
        result = find_call(configured.sources, query, configured.settings)
        found = result.recordings
        _report_site_errors(result.errors, found=bool(found))
        if not found:
            fail(f"no recordings found for call {params['callid']!r}", 1)
    source_of = {s.id: s for s in configured.sources}
    if output == "-":
        if len(found) > 1:
            raise UsageError(f"{len(found)} files match: give -o a folder, not '-'")
        for chunk in _open(source_of[found[0].source], found[0]):
            sys.stdout.buffer.write(chunk)
        return
    target = Path(output)
    if len(found) > 1 or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        destinations = [target / name for name in _distinct_names(found)]
    else:
        destinations = [target]
    for recording, destination in zip(found, destinations, strict=True):
        _write(_open(source_of[recording.source], recording), destination)
        click.echo(f"{destination}\t{recording.size}")


def _open(source: Source, recording: Recording) -> Iterator[bytes]:
    if isinstance(source, StoreSource):
        return source.store.open(recording.key)
    return source.download(recording.key)


def _stat_key(configured: Configured, key: str) -> Recording:
    for source in configured.sources:
        if not isinstance(source, StoreSource):
            continue
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
    tmp: str | None = None
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(tmp, destination)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def _distinct_names(recordings: Sequence[Recording]) -> list[str]:
    """Each recording's name, with ``-2``, ``-3``... before the extension where names repeat
    (the same call in two sources, or in two folders of one)."""
    seen: dict[str, int] = {}
    names = []
    for recording in recordings:
        name = recording.name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            stem, dot, ext = name.rpartition(".")
            name = f"{stem}-{seen[name]}{dot}{ext}" if dot else f"{name}-{seen[name]}"
        names.append(name)
    return names


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


# These import this module: keep them last.
from gateway.web.check import check_command  # noqa: E402
from gateway.web.command import serve_command  # noqa: E402

main.add_command(serve_command)
main.add_command(check_command)
