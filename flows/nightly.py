"""The ``nightly`` flow: refresh every profile for a business date, bring the reward ledger
up to date (funding, Stripe redemptions, expiry), plan and store the night's actions, update
fatigue tags (dispatch comes with a later issue); and ``backfill``, which
runs many nights in date order in one process, so each night sees the actions of the ones
before it.

Each task works on the whole night in one transaction: Prefect sees four tasks per night,
never one per member.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from nudgeflow.bootstrap import get_app
from nudgeflow.timeutil import day_end
from planning.campaign_files import load_campaign_set
from planning.lifecycle_file import load_lifecycle
from store.actions import plan_stored_night, store_plan, summarize_plan
from store.fatigue import update_fatigue
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


@task(name="sync-rewards", cache_policy=NO_CACHE)
def sync_rewards_task(as_of: date) -> dict[str, int]:
    """Bring the ledger up to date before planning: fund budgets from the campaign files,
    record Stripe redemptions (when Stripe is the provider), release expired rewards."""
    from rewards.stripe_sync import expire_overdue, sync_stripe
    from store.ledger import ledger_transaction, sync_funding

    app = get_app()
    campaign_set = load_campaign_set(app.settings.campaigns_dir)
    with ledger_transaction(app.engine) as connection:
        funding = sync_funding(connection, campaign_set.campaigns, as_of, app.zone)
    redeemed = 0
    problems: list[str] = []
    if app.settings.rewards.provider == "stripe":
        api = app.stripe_api()
        try:
            synced = sync_stripe(app.engine, api, app.zone)
        finally:
            api.close()
        redeemed, problems = synced.redeemed, list(synced.problems)
    with ledger_transaction(app.engine) as connection:
        expired, expiry_problems = expire_overdue(connection, day_end(as_of, app.zone), day=as_of)
    logger = get_run_logger()
    for problem in problems + expiry_problems:
        logger.warning("rewards: %s", problem)
    logger.info(
        "rewards as of %s: %d funding changes, %d redemptions, %d expired",
        as_of,
        len(funding),
        redeemed,
        len(expired),
    )
    return {"funding_changes": len(funding), "redeemed": redeemed, "expired": len(expired)}


@task(name="plan-night", cache_policy=NO_CACHE)
def plan_night_task(as_of: date) -> dict[str, Any]:
    """Select candidates, apply the guards and store the actions, in one transaction."""
    app = get_app()
    campaign_set = load_campaign_set(app.settings.campaigns_dir)
    as_of_end = day_end(as_of, app.zone)
    with app.engine.begin() as connection:
        night = plan_stored_night(connection, campaign_set, as_of, as_of_end, app.zone)
        new = store_plan(connection, night.plan, as_of, as_of_end, campaign_set.enabled)
    summary = summarize_plan(night.plan, new)
    selected = sum(c["selected"] for c in summary["campaigns"])
    get_run_logger().info(
        "planned %d campaigns for %s: %d selected, %d new actions",
        len(summary["campaigns"]),
        as_of,
        selected,
        new,
    )
    return summary


@task(name="update-fatigue", cache_policy=NO_CACHE)
def update_fatigue_task(as_of: date) -> dict[str, int]:
    """End the rests of members who engaged, then tag those who ignore every nudge."""
    app = get_app()
    policy = load_campaign_set(app.settings.campaigns_dir).policy
    with app.engine.begin() as connection:
        result = update_fatigue(connection, policy, as_of, day_end(as_of, app.zone), app.zone)
    get_run_logger().info(
        "fatigue as of %s: %d tagged, %d recovered", as_of, result.tagged, result.recovered
    )
    return {"tagged": result.tagged, "recovered": result.recovered}


def summarize_night(as_of: date) -> dict[str, Any]:
    """The funnel after a night: members per stage and moves since the previous night."""
    with get_app().engine.connect() as connection:
        return funnel(connection, as_of)


@flow(name="nightly")
def nightly(as_of: date) -> dict[str, Any]:
    """One business night: refresh profiles, plan, update fatigue, then record how the
    night ended (funnel, per-campaign plan and fatigue counts) in the run's summary."""
    app = get_app()
    with app.engine.begin() as connection:
        run_id = start_run(connection, as_of, "nightly", flow_run.get_id())
    try:
        refreshed = refresh_profiles_task(as_of)
        rewards = sync_rewards_task(as_of)
        planned = plan_night_task(as_of)
        fatigue = update_fatigue_task(as_of)
        summary = {
            **summarize_night(as_of),
            "members": refreshed["members"],
            "rewards": rewards,
            "plan": planned,
            "fatigue": fatigue,
        }
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
