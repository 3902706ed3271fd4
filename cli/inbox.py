"""``nudgeflow inbox``: the requests the HTTP service accepted (webhooks, live events), for
operators: what is pending, done or failed; work the backlog now; retry failed rows."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.table import Table

from cli.context import console, err_console, process_app
from cli.help_format import CommandApp
from inbound.inbox import work_inbox
from store.inbox import KINDS, STATES, failed_rows, inbox_status, retry_failed

app = CommandApp(
    help="The inbox of the HTTP service: status (the default), work, retry.",
    invoke_without_command=True,
)


@app.callback()
def status(ctx: typer.Context) -> None:
    """Requests by kind and state, the oldest pending one, and the latest failures."""
    if ctx.invoked_subcommand is not None:
        return
    application = process_app()
    with application.engine.connect() as connection:
        found = inbox_status(connection)
        failures = failed_rows(connection, limit=10)
    table = Table("kind", *STATES, box=None)
    for kind in KINDS:
        table.add_row(kind, *(f"{found.counts.get((kind, state), 0):,}" for state in STATES))
    console.print(table)
    if found.oldest_pending is None:
        console.print("nothing pending")
    else:
        received = datetime.fromtimestamp(found.oldest_pending, UTC)
        age = application.clock() - received
        console.print(
            f"oldest pending: received {received:%Y-%m-%d %H:%M:%S} UTC "
            f"({_ago(int(age.total_seconds()))})",
            markup=False,
        )
    for row_id, source, attempts, error in failures:
        err_console.print(
            f"failed: row {row_id} ({source}) after {attempts} attempts: {error}",
            markup=False,
            soft_wrap=True,
        )


def _ago(seconds: int) -> str:
    for unit, size in (("days", 86_400), ("hours", 3_600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size:,} {unit} ago"
    return f"{max(seconds, 0)} seconds ago"


@app.command("work")
def work() -> None:
    """Work every pending request now (what the service's worker and the night do).
    Exit 1 when a request failed for good (see `nudgeflow inbox`)."""
    application = process_app()
    result = work_inbox(application.engine, application.zone, application.clock)
    effects = ", ".join(f"{count:,} {name}" for name, count in result.effects.items())
    console.print(
        f"worked {result.done:,} requests" + (f": {effects}" if effects else ""), markup=False
    )
    skipped = ", ".join(f"{count:,} {reason}" for reason, count in result.skipped.items())
    if skipped:
        console.print(f"skipped events: {skipped}", markup=False)
    if result.retrying:
        err_console.print(
            f"{result.retrying:,} requests failed this time and stay pending", markup=False
        )
    for problem in result.problems:
        err_console.print(f"problem: {problem}", markup=False, soft_wrap=True)
    if result.failed:
        raise typer.Exit(1)


@app.command("retry")
def retry(
    row_ids: list[int] = typer.Argument(
        None, metavar="[ROW_ID]...", help="Only these rows (default: every failed row)."
    ),
) -> None:
    """Put failed requests back to pending, with their attempts reset, after fixing what
    made them fail; the service's worker or `nudgeflow inbox work` works them again."""
    application = process_app()
    with application.engine.begin() as connection:
        count = retry_failed(connection, row_ids or None)
    console.print(f"{count:,} failed requests are pending again", markup=False)
