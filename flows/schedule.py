"""The scheduled side of the nightly flow: ``scheduled_nightly`` (the deployment's entry
point, which works out the previous business day), the cron schedule in the business time
zone, and serving it as the ``nightly`` deployment against a running Prefect server.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger
from prefect.runtime import flow_run
from prefect.schedules import Schedule

from bootstrap.app import process_app
from flows.nightly import nightly
from nudgeflow.errors import NudgeflowError, SettingsError
from nudgeflow.timeutil import previous_business_day

DEPLOYMENT_NAME = "nightly"
CRON_SETTING = "NUDGEFLOW_SCHEDULE__CRON"
START_SERVER_HINT = (
    "start one with `prefect server start`, then `export PREFECT_API_URL=http://127.0.0.1:4200/api`"
)


class PrefectServerUnavailable(NudgeflowError):
    """Serving needs a running Prefect API server, and there is none to talk to."""

    exit_code = 1


def _scheduled_start() -> datetime:
    # Outside a flow run Prefect answers "now"; inside, the time the run was due, so a
    # run that starts late (or is retried after midnight) still works on the right night.
    start = flow_run.scheduled_start_time
    if not isinstance(start, datetime):
        return datetime.now(UTC)
    # On Python < 3.13 Prefect hands out a Pendulum DateTime, whose Pendulum-only behaviour
    # (its `.date()` is a Pendulum Date, whose `replace` warns since Prefect 3.9) must not
    # leak into the night: the same instant as a standard-library datetime.
    return datetime.fromtimestamp(start.timestamp(), tz=UTC)


def _night_of(as_of: date | None) -> date:
    """The night a scheduled run works on: ``as_of``, else the business day before the
    run was due."""
    if as_of is not None:
        return as_of
    return previous_business_day(_scheduled_start(), process_app().zone)


def scheduled_run_name() -> str:
    """A scheduled run is named for its night, as the ``nightly`` run it starts:
    ``nightly-2026-11-28``."""
    return f"nightly-{_night_of(flow_run.parameters.get('as_of')).isoformat()}"


@flow(name="nightly-scheduled", flow_run_name=scheduled_run_name)
def scheduled_nightly(as_of: date | None = None) -> dict[str, Any]:
    """Run ``nightly`` for ``as_of``, by default the business day before the run was due."""
    night = _night_of(as_of)
    get_run_logger().info("nightly run for %s (%s)", night, process_app().zone.key)
    return nightly(night)


def nightly_schedule(cron: str, timezone: str) -> Schedule:
    """The deployment's cron schedule; a bad expression is a ``SettingsError`` naming where
    it came from."""
    from prefect.schedules import Cron

    try:
        return Cron(cron, timezone=timezone)
    except ValueError:
        raise SettingsError(
            f"{CRON_SETTING} / --cron: {cron!r} is not a cron expression "
            "(five fields: minute hour day-of-month month day-of-week, e.g. '0 2 * * *')"
        ) from None


def next_run_times(
    cron: str, timezone: str, count: int = 3, after: datetime | None = None
) -> list[datetime]:
    """The next ``count`` times the server will schedule, computed by its own code (which
    also decides what a 02:00 run does on the nights the clocks change)."""
    from prefect.server.schemas.schedules import CronSchedule

    schedule = CronSchedule(cron=cron, timezone=timezone)
    dates = asyncio.run(schedule.get_dates(count, start=after or datetime.now(UTC)))
    zone = ZoneInfo(timezone)
    return [datetime.fromtimestamp(moment.timestamp(), tz=UTC).astimezone(zone) for moment in dates]


def check_prefect_server(api_url: str | None, timeout: float = 3.0) -> str:
    """Return the API URL when a Prefect server answers its health check there."""
    import httpx

    if not api_url:
        raise PrefectServerUnavailable(
            f"serving needs a running Prefect server and PREFECT_API_URL is not set: "
            f"{START_SERVER_HINT}"
        )
    url = api_url.rstrip("/") + "/health"
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        raise PrefectServerUnavailable(
            f"no Prefect server answers at {api_url} ({type(exc).__name__}): {START_SERVER_HINT}"
        ) from None
    if response.status_code != 200:
        raise PrefectServerUnavailable(
            f"GET {url} answered HTTP {response.status_code}, not a healthy Prefect server: "
            f"{START_SERVER_HINT}"
        )
    return api_url


def serve_nightly(cron: str, timezone: str) -> None:
    """Register the ``nightly`` deployment on ``cron`` in ``timezone`` and run its flow
    runs in this process until stopped; stopping pauses the schedule."""
    from prefect import serve
    from prefect.deployments.runner import RunnerDeployment
    from prefect.types.entrypoint import EntrypointType

    # What `scheduled_nightly.to_deployment(...)` builds, minus its async-dispatch typing.
    deployment = RunnerDeployment.from_flow(
        scheduled_nightly,
        name=DEPLOYMENT_NAME,
        schedule=nightly_schedule(cron, timezone),
        description="The nightly flow for the previous business day, on the business clock.",
        tags=["nudgeflow"],
        # Loaded by import, so runs work whatever directory `nudgeflow serve` started in.
        entrypoint_type=EntrypointType.MODULE_PATH,
    )
    # One night at a time: a late night must finish before the next one plans.
    serve(deployment, pause_on_shutdown=True, limit=1)
