"""``nudgeflow serve``: the ``nightly`` deployment on a cron in the business time zone,
served from this process against a running Prefect server."""

from __future__ import annotations

import typer

from cli.context import console, process_app
from nudgeflow.timeutil import previous_business_day
from settings.prefect_env import prefect_api_url, prepare_prefect_environment


def serve(
    cron: str | None = typer.Option(
        None,
        "--cron",
        metavar="CRON",
        help="Cron expression in the business time zone "
        "(default: NUDGEFLOW_SCHEDULE__CRON, else '0 2 * * *').",
    ),
    check: bool = typer.Option(
        False,
        "--check",
        "--dry-run",
        help="Check the schedule, the Prefect server, the files and the database, print "
        "the next runs, and exit without serving.",
    ),
) -> None:
    """Serve the nightly flow on its schedule: each run works on the previous business day.

    Needs a running Prefect server: `prefect server start`, then set PREFECT_API_URL.
    Ctrl-C stops serving and pauses the schedule until the next `nudgeflow serve`.
    """
    app = process_app()
    settings = app.settings
    expression = cron if cron is not None else settings.schedule.cron

    prepare_prefect_environment()
    from flows.schedule import (
        DEPLOYMENT_NAME,
        check_prefect_server,
        next_run_times,
        nightly_schedule,
        scheduled_nightly,
        serve_nightly,
    )

    nightly_schedule(expression, settings.timezone)
    api_url = check_prefect_server(prefect_api_url())
    # Fail now on a bad campaign, lifecycle or policy file, not at 02:00.
    app.load_campaigns()
    _ = app.engine  # migrate before the first run
    app.check_sending()  # every night it serves sends: the key and the outbox, now

    console.print(f"deployment: {scheduled_nightly.name}/{DEPLOYMENT_NAME}")
    console.print(f"schedule:   {expression} ({settings.timezone}), previous business day")
    console.print(f"server:     {api_url}")
    for moment in next_run_times(expression, settings.timezone, count=3):
        as_of = previous_business_day(moment, settings.zone)
        console.print(f"next run:   {moment:%Y-%m-%d %H:%M %Z} for the night of {as_of}")
    if check:
        console.print("check passed; not serving (drop --check to serve)")
        return
    serve_nightly(expression, settings.timezone)
