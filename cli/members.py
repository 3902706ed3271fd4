"""``nudgeflow members``: import the people campaigns target, forget one of them (GDPR
Art. 17) and export what is held about one (Art. 15). ``show`` lives elsewhere."""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

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
from cli.export import output
from cli.help_format import CommandApp
from store.importer import Progress as ProgressCallback
from store.importer import Returning, import_file
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


MemberArgument = Annotated[
    str, typer.Argument(metavar="MEMBER_ID", help="The member's member_id.", show_default=False)
]


@app.command("import")
def import_command(
    file: FileArgument,
    file_format: FormatOption = None,
    allow_returning: bool = typer.Option(
        False,
        "--allow-returning",
        help="Take back members who were forgotten (members forget) instead of refusing "
        "their rows: they come back as new members.",
    ),
) -> None:
    """Add or update members from a file, upserting by member_id (safe to repeat). A row
    whose member_id or email belongs to a forgotten member is refused."""
    run_import("members", file, file_format, allow_returning=allow_returning)


def run_import(
    kind: Kind, path: Path, file_format: str | None, *, allow_returning: bool = False
) -> None:
    """Import a file, report its bad rows on stderr and the counts on stdout."""
    nudgeflow = process_app()
    returning = Returning(nudgeflow.settings.signing_key.get_secret_value(), allow=allow_returning)
    with _progress_bar(path) as progress:
        result = import_file(
            nudgeflow.engine,
            kind,
            path,
            file_format=file_format,
            chunk_size=nudgeflow.settings.import_chunk_size,
            progress=progress,
            returning=returning,
        )
    for problem in result.problems:
        err_console.print(str(problem), markup=False, soft_wrap=True)
    if result.more_problems:
        err_console.print(f"... and {result.more_problems} more", soft_wrap=True)
    console.print(result.summary(), markup=False, soft_wrap=True)
    if result.rejected:
        raise typer.Exit(1)  # some rows were not imported


@app.command("forget")
def forget(
    member_id: MemberArgument,
    reason: str | None = typer.Option(
        None, "--reason", metavar="TEXT", help="Why (kept on the receipt): a ticket number."
    ),
    by: str | None = typer.Option(
        None, "--by", metavar="NAME", help="Who asked for it (default: your login name)."
    ),
) -> None:
    """Forget a member (GDPR Art. 17): remove their personal data everywhere nudgeflow keeps
    it, keep actions, rewards and the ledger under a pseudonym, and print the receipt.
    Forgetting a member again changes nothing (exit 0)."""
    # Imported here: the other member commands should not load the use case's providers.
    from night.erasure import forget_member

    app_ = process_app()
    app_.check_signing_key()  # forgotten references keyed with a public key protect nothing
    done = forget_member(
        app_.engine,
        member_id,
        signing_key=app_.settings.signing_key.get_secret_value(),
        outbox_dir=app_.settings.email.outbox_dir,
        erased_by=by or _login_name(),
        reason=reason,
        clock=app_.clock,
    )
    receipt = done.receipt
    when = f"{receipt.erased_at:%Y-%m-%d %H:%M:%S} UTC"
    if done.already:
        console.print(
            f"member {member_id} was already forgotten on {when} (receipt {receipt.id}); "
            "nothing changed",
            markup=False,
            soft_wrap=True,
        )
        return
    removed = ", ".join(
        f"{what.replace('_', ' ')} {count}" for what, count in receipt.removed.items()
    )
    console.print(
        f"forgot member {member_id} (receipt {receipt.id}, {when}, by {receipt.erased_by}); "
        f"kept as {receipt.member_ref} in actions and the ledger; removed: {removed}",
        markup=False,
        soft_wrap=True,
    )


@app.command("erasures")
def erasures(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The erasure receipts, oldest first: when, by whom, why, the pseudonym kept, and what
    was removed (counts only: the erased data is gone)."""
    from store.erasure import list_receipts

    with process_app().engine.connect() as connection:
        receipts = list_receipts(connection)
    listed: list[dict[str, Any]] = [
        {
            "receipt": r.id,
            "erased_at": r.erased_at.isoformat(timespec="seconds") + "Z",
            "erased_by": r.erased_by,
            "reason": r.reason,
            "pseudonym": r.member_ref,
            "removed": r.removed,
        }
        for r in receipts
    ]
    if as_json:
        typer.echo(json.dumps(listed, indent=2, ensure_ascii=False))
        return
    if not listed:
        console.print("no member has been forgotten")
        return
    for r in listed:
        removed = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in r["removed"].items() if v)
        console.print(
            f"{r['receipt']}  {r['erased_at']}  by {r['erased_by']}  {r['pseudonym']}"
            f"  reason: {r['reason'] or '-'}  removed: {removed}",
            markup=False,
            soft_wrap=True,
        )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "unknown"


@app.command("export")
def export(
    member_id: MemberArgument,
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write here instead of stdout."
    ),
) -> None:
    """Everything held about one member, as JSON (a subject-access export, GDPR Art. 15)."""
    from night.access_export import subject_access

    app_ = process_app()
    document = subject_access(
        app_.engine,
        member_id,
        signing_key=app_.settings.signing_key.get_secret_value(),
        now=app_.clock(),
    )
    with output(out) as handle:
        handle.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if out is not None:
        console.print(f"exported member {member_id} to {out}", markup=False, soft_wrap=True)


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
