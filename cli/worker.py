"""``nudgeflow worker``: join a running night and work its dispatch batches (PostgreSQL);
and the worker processes ``nudgeflow run --workers N`` starts for its night."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import console, process_app
from cli.options import AsOf, default_as_of
from night.workers import find_run, join_run
from nudgeflow.errors import NotFoundError, SettingsError

SQLITE_ONE_WORKER = (
    "SQLite lets one process write at a time, so its nights are dispatched by one process; "
    "use PostgreSQL (NUDGEFLOW_DATABASE_URL=postgresql+psycopg://…) to share a night "
    "between workers"
)
_STOP_SECONDS = 10.0

if TYPE_CHECKING:
    from bootstrap.app import App


def worker(
    as_of: AsOf = None,
    run_id: Annotated[
        int | None,
        typer.Option("--run", min=1, metavar="ID", help="Join this run (see nudgeflow runs)."),
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            min=0,
            metavar="SECONDS",
            help="How long to wait for the night's run to start (default 600).",
        ),
    ] = 600.0,
    newer_than: Annotated[
        datetime | None, typer.Option("--newer-than", hidden=True, formats=["%Y-%m-%dT%H:%M:%S.%f"])
    ] = None,
) -> None:
    """Join the running night (PostgreSQL): claim and work batches of its dispatch, with
    the others, until the night's dispatch is over. Start one on each machine that should
    help; nudgeflow run --workers N starts them on this one."""
    app = process_app()
    app.check_sending()
    if app.engine.dialect.name != "postgresql":
        raise SettingsError(f"nudgeflow worker: {SQLITE_ONE_WORKER}")
    terms = app.claim_terms()
    if run_id is None:
        day = default_as_of(as_of, app)
        started_after = newer_than.replace(tzinfo=UTC) if newer_than else None
        found = find_run(
            app.engine,
            day,
            started_after=started_after,
            wait_seconds=wait,
            poll_seconds=terms.poll_seconds,
        )
        if found is None:
            raise NotFoundError(
                f"no nightly run of {day} is running (waited {wait:g} s): start it with "
                f"`nudgeflow run --as-of {day}`"
            )
        run_id = found
        night = app.night(day)
    else:
        night = app.night(_run_as_of(app, run_id))
    joined = join_run(app.dispatcher(night), run_id, terms=terms)
    console.print(f"run {run_id} (night {night.as_of}): {joined.batches} batches worked here")


def _run_as_of(app: App, run_id: int) -> date:
    from store.dispatch_claims import round_of

    with app.engine.connect() as connection:
        state = round_of(connection, run_id)
    if state is None:
        raise NotFoundError(f"there is no run {run_id} (see `nudgeflow runs`)")
    return state.as_of


@contextmanager
def started_workers(count: int, as_of: date) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start ``count`` ``nudgeflow worker`` processes for the night ``as_of`` (they join
    the run this process is about to open) and stop them when the ``with`` ends."""
    since = datetime.now(UTC).replace(tzinfo=None)
    command = [
        sys.executable,
        "-c",
        "from cli.main import main; main()",
        "worker",
        "--as-of",
        as_of.isoformat(),
        "--newer-than",
        since.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "--wait",
        "86400",
    ]
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
