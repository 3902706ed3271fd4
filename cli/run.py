"""``nudgeflow run``: the nightly flow for one date or, with ``--from/--to``, a backfill."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from cli.context import console, process_app
from cli.options import AsOf, date_option, default_as_of
from cli.render import print_funnel, print_night_report
from cli.worker import SQLITE_ONE_WORKER, started_workers
from night.lease import night_lease
from night.runs import nights_to_rewind
from settings.prefect_env import prefect_api_url, prepare_prefect_environment


def run(
    as_of: AsOf = None,
    start: Annotated[
        date | None, date_option("--from", "First date of a backfill (with --to).")
    ] = None,
    end: Annotated[date | None, date_option("--to", "Last date of a backfill, inclusive.")] = None,
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Show what the night would do (held out included); write, issue and send nothing.",
    ),
    rewind: bool = typer.Option(
        False,
        "--rewind",
        help="Allow running a night before nights already run; those nights are rewound "
        "and must be run again.",
    ),
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            metavar="N",
            help="Processes that dispatch the night together, this one included "
            "(PostgreSQL; default NUDGEFLOW_DISPATCH__WORKERS, 1).",
        ),
    ] = None,
) -> None:
    """Run the nightly flow: work the service's inbox, refresh every member's profile, sync
    rewards, clear the fatigue tags of members who responded, plan the campaigns, dispatch
    the night's actions (rewards and emails), tag members who ignored their recent nudges.

    Only one run per database at a time: a second one exits 3."""
    if as_of is not None and (start or end):
        raise typer.BadParameter("give either --as-of or --from/--to, not both")
    if (start is None) != (end is None):
        raise typer.BadParameter("--from and --to go together")
    if start is not None and end is not None and start > end:
        raise typer.BadParameter(f"--from {start:%Y-%m-%d} is after --to {end:%Y-%m-%d}")
    if dry_run and start is not None:
        raise typer.BadParameter("--dry-run plans one night: use --as-of, not --from/--to")
    if workers is not None and workers > 1 and start is not None:
        raise typer.BadParameter("--workers shares one night: use --as-of, not --from/--to")
    app = process_app()
    if not dry_run:
        # Before Prefect starts and before any action is touched: the signing key, and a
        # sender that can be built (an outbox path that is a file stops here, not per email).
        app.check_sending()
    # Fail on a bad campaign, lifecycle or policy file before Prefect starts.
    lifecycle = app.load_campaigns().lifecycle
    _ = app.engine  # migrate before the flow starts
    workers = workers or app.settings.dispatch.workers
    if workers > 1 and app.engine.dialect.name != "postgresql":
        console.print(f"note: --workers {workers}: {SQLITE_ONE_WORKER}")
        workers = 1

    prepare_prefect_environment()
    if prefect_api_url() is None:
        console.print(
            "note: PREFECT_API_URL is not set, so Prefect starts a temporary server for this "
            "run (10–25 s). For faster runs and a UI: `prefect server start`, then "
            "PREFECT_API_URL=http://127.0.0.1:4200/api."
        )
    from flows.nightly import backfill, nightly

    day = start if start is not None else default_as_of(as_of, app)
    if dry_run:  # writes nothing, so it takes no lease either
        summaries = [nightly(day, dry_run=True)]
    else:
        rewound = nights_to_rewind(  # refused before Prefect starts
            app.engine, day, rewind=rewind, through=end
        )
        if rewound:
            listed = ", ".join(night.isoformat() for night in rewound)
            console.print(
                f"rewinding the nights after {end or day}: {listed} (run them again after)"
            )
        # The lease is taken before Prefect starts, so a second run fails in a second, not
        # after starting a server; the flow sees this process already holds it.
        with night_lease(app.engine, day, app.clock):
            if start is not None and end is not None:
                summaries = backfill(start, end, rewind=rewind)
            else:
                # The night's extra workers join the run the flow opens, and stop after it.
                with started_workers(workers - 1 if start is None else 0, day):
                    summaries = [nightly(day, rewind=rewind, workers=workers)]
    for summary in summaries:
        inbox = summary.get("inbox", {})
        if inbox.get("worked"):
            console.print(f"night {summary['as_of']}: {inbox['worked']:,} inbox requests worked")
        if inbox.get("pending"):
            console.print(
                f"inbox: {inbox['pending']:,} requests pending; a real run works them before "
                "it plans (this dry run did not)"
            )
        console.print(f"night {summary['as_of']}: {summary['members']:,} profiles refreshed")
    last = summaries[-1]
    print_funnel(last, lifecycle.stage_ids)
    print_night_report(last)
