"""The ``nightly`` flow: refresh every profile for a business date (later issues add plan,
dispatch and fatigue), and ``backfill``, which runs many nights in date order in one process.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from nudgeflow.bootstrap import get_app
from nudgeflow.timeutil import day_end
from planning.lifecycle_file import load_lifecycle
from store.profiles import funnel, refresh_profiles
from store.runs import finish_run, start_run, supersede_later_runs


@task(name="refresh-profiles", cache_policy=NO_CACHE)
def refresh_profiles_task(as_of: date) -> dict[str, Any]:
    """Recompute every member's stage, history, RFM and score in one transaction."""
    app = get_app()
    lifecycle = load_lifecycle(app.settings.campaigns_dir)
    with app.engine.begin() as connection:
        result = refresh_profiles(
            connection, lifecycle, as_of, day_end(as_of, app.zone), app.settings.currency
        )
        supersede_later_runs(connection, as_of)
    get_run_logger().info("refreshed %d profiles as of %s", result.members, as_of)
    return {"members": result.members, "initial": result.initial}


def summarize_night(as_of: date) -> dict[str, Any]:
    """The funnel after a night: members per stage and moves since the previous night."""
    with get_app().engine.connect() as connection:
        return funnel(connection, as_of)


@flow(name="nightly")
def nightly(as_of: date) -> dict[str, Any]:
    """One business night: refresh profiles, then record how the night ended."""
    app = get_app()
    with app.engine.begin() as connection:
        run_id = start_run(connection, as_of, "nightly", flow_run.get_id())
    try:
        refreshed = refresh_profiles_task(as_of)
        summary = {**summarize_night(as_of), "members": refreshed["members"]}
    except BaseException as exc:
        with app.engine.begin() as connection:
            finish_run(connection, run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    with app.engine.begin() as connection:
        finish_run(connection, run_id, "completed", summary=summary)
    return summary


@flow(name="backfill")
def backfill(start: date, end: date) -> list[dict[str, Any]]:
    """Run ``nightly`` for every date from ``start`` to ``end``, in order, in this process."""
    nights = []
    day = start
    while day <= end:
        nights.append(nightly(day))
        day += timedelta(days=1)
    return nights
