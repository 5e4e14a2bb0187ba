"""``gateway search`` and ``gateway get``: find a call's recordings, and fetch them."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gateway.cli.options import call_options, make_query, source_options, with_sources
from gateway.cli.output import fail, terminal_safe
from gateway.configuration import Configured
from gateway.errors import NotFound, UsageError
from gateway.explain import Explanation
from gateway.recordings import Recording
from gateway.source import SiteError, StoredFile
from gateway.storage import ByteStream

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar


@click.command("search")
@source_options
@call_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of the files.")
@click.option(
    "--explain",
    is_flag=True,
    help="Also say on stderr what each source listed, how long it took, and near misses.",
)
@with_sources
def search_command(configured: Configured, as_json: bool, explain: bool, **params: Any) -> None:
    """Find the recordings of a call."""
    query = make_query(params, configured)
    explanation = Explanation() if explain else None
    try:
        result = configured.searcher.find(query, explain=explanation)
    finally:
        if explanation is not None:  # a search that failed is explained too
            for line in explanation.lines():
                click.echo(terminal_safe(line), err=True)
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


@click.command("get")
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
        result = configured.searcher.find(query)
        found = result.recordings
        _report_site_errors(result.errors, found=bool(found))
        if not found:
            fail(f"no recordings found for call {params['callid']!r}", 1)
    if output == "-":
        if len(found) > 1:
            raise UsageError(f"{len(found)} files match: give -o a folder, not '-'")
        stream = _open(configured, found[0])
        try:
            for chunk in stream:
                sys.stdout.buffer.write(chunk)
        finally:
            stream.close()
        return
    target = Path(output)
    if len(found) > 1 or target.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        destinations = [target / name for name in _distinct_names(found)]
    else:
        destinations = [target]
    for recording, destination in zip(found, destinations, strict=True):
        _write(functools.partial(_open, configured, recording), destination, recording.size)
        click.echo(f"{destination}\t{recording.size}")


def _open(configured: Configured, recording: Recording) -> ByteStream:
    source = configured.searcher.source(recording.source)
    if source is None:
        raise NotFound(f"no source {recording.source!r}")
    return source.file(recording.key, tenant=None).open()


def _stat_key(configured: Configured, key: str) -> Recording:
    """The file at ``key`` in the first source that has it (``--key``)."""
    for source in configured.sources:
        if source.federated:
            continue  # a file at another site is only found by searching
        source.check()
        try:
            delivery = source.file(key, tenant=None)
        except NotFound:
            continue
        if not isinstance(delivery, StoredFile):
            continue  # a file at another site is only found by searching
        try:
            return Recording.from_entry(source.id, delivery.entry)
        except ValueError:
            raise UsageError(f"{key!r} is not an audio file") from None
    raise NotFound(f"no source has the key {key!r}")


def _write(open_stream: Callable[[], ByteStream], destination: Path, size: int) -> None:
    """Write atomically: a partial download never takes the place of a good file. A file of
    ``PROGRESS_FROM`` bytes or more shows its progress on stderr when stderr is a terminal."""
    import tempfile  # only ``get`` writes files: ``search`` starts without it

    tmp: str | None = None
    destination.parent.mkdir(parents=True, exist_ok=True)
    stream = open_stream()
    try:
        fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
        with os.fdopen(fd, "wb") as out, progress(size, destination.name) as bar:
            for chunk in stream:
                out.write(chunk)
                bar.update(len(chunk))
        os.replace(tmp, destination)
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        stream.close()


PROGRESS_FROM = 1024 * 1024
"""Files smaller than this are written without a progress bar."""


def progress(size: int, name: str) -> ProgressBar[int]:
    """A progress bar of ``size`` bytes on stderr, hidden unless stderr is a terminal and the
    file is large (``PROGRESS_FROM``): a pipe or a log never gets it."""
    hidden = size < PROGRESS_FROM or not sys.stderr.isatty()
    return click.progressbar(
        length=size, label=name, file=sys.stderr, hidden=hidden, show_eta=True, show_pos=False
    )


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
