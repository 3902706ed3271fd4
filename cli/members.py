"""``nudgeflow members``: import the people campaigns target (``show`` lives elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cli.context import console, err_console, process_app
from cli.help_format import CommandApp
from store.importer import Progress as ProgressCallback
from store.importer import import_file
from store.rows import Kind

app = CommandApp(help="Members: the people campaigns target.", no_args_is_help=True)

FileArgument = Annotated[
    Path, typer.Argument(metavar="FILE", help="A .csv, .jsonl or .ndjson file.", show_default=False)
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format", metavar="FORMAT", help="csv or jsonl (default: from the file's extension)."
    ),
]


@app.command("import")
def import_command(file: FileArgument, file_format: FormatOption = None) -> None:
    """Add or update members from a file, upserting by member_id (safe to repeat)."""
    run_import("members", file, file_format)


def run_import(kind: Kind, path: Path, file_format: str | None) -> None:
    """Import a file, report its bad rows on stderr and the counts on stdout."""
    nudgeflow = process_app()
    with _progress_bar(path) as progress:
        result = import_file(
            nudgeflow.engine,
            kind,
            path,
            file_format=file_format,
            chunk_size=nudgeflow.settings.import_chunk_size,
            progress=progress,
        )
    for problem in result.problems:
        err_console.print(str(problem), markup=False, soft_wrap=True)
    if result.more_problems:
        err_console.print(f"... and {result.more_problems} more", soft_wrap=True)
    console.print(result.summary(), markup=False, soft_wrap=True)
    if result.rejected:
        raise typer.Exit(1)  # some rows were not imported


@contextmanager
def _progress_bar(path: Path) -> Iterator[ProgressCallback | None]:
    """A bar by bytes read, on stderr, only when stderr is a terminal."""
    if not err_console.is_terminal:
        yield None
        return
    try:
        total: int | None = path.stat().st_size
    except OSError:
        total = None  # the importer reports the unreadable file
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(f"importing {path.name}", total=total)
        yield lambda done: bar.update(task, completed=done)
