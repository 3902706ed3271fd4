"""The ``nightly`` flow: refresh every profile for a business date, bring the reward ledger
up to date (funding, Stripe redemptions, expiry), plan and store the night's actions,
dispatch them, update fatigue tags, and report; and ``backfill``, which runs many nights in
date order in one process, so each night sees the actions of the ones before it.

The steps are plain functions in ``night.steps``; here each becomes a task. Prefect sees a
handful of tasks per night plus one per batch of actions (``DISPATCH__BATCH_SIZE``, 200 by
default), never one per member or email.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from bootstrap.app import get_app
from night import steps as night
from night.dispatch import OUTCOMES
from night.report_text import format_excluded, report_markdown
from night.rewards import sync_rewards
from planning.campaign_files import load_campaign_set
from store.profiles import funnel
from store.runs import finish_run, start_run


@task(name="refresh-profiles", cache_policy=NO_CACHE)
def refresh_profiles_task(as_of: date) -> dict[str, Any]:
    """Recompute every member's stage, history, RFM and score in one transaction."""
    result = night.refresh(get_app(), as_of)
    get_run_logger().info("refreshed %d profiles as of %s", result["members"], as_of)
    return result


@task(name="sync-rewards", cache_policy=NO_CACHE)
def sync_rewards_task(as_of: date) -> dict[str, int]:
    """Bring the ledger up to date before planning: fund budgets from the campaign files,
    record Stripe redemptions (when Stripe is the provider), release expired rewards."""
    app = get_app()
    campaign_set = load_campaign_set(app.settings.campaigns_dir)
    api = app.stripe_api() if app.settings.rewards.provider == "stripe" else None
    try:
        synced = sync_rewards(
            app.engine, campaign_set.campaigns, api, as_of, app.zone, now=datetime.now(UTC)
        )
    finally:
        if api is not None:
            api.close()
    logger = get_run_logger()
    for problem in synced.problems:
        logger.warning("rewards: %s", problem)
    counts = synced.counts()
    logger.info(
        "rewards as of %s: %d funding changes, %d redemptions, %d expired",
        as_of,
        counts["funding_changes"],
        counts["redeemed"],
        counts["expired"],
    )
    return counts


@task(name="plan-night", cache_policy=NO_CACHE)
def plan_night_task(as_of: date, store: bool = True) -> dict[str, Any]:
    """Select candidates, apply the guards and store the actions, in one transaction."""
    summary = night.plan(get_app(), as_of, store=store)
    selected = sum(c["selected"] for c in summary["campaigns"])
    get_run_logger().info(
        "planned %d campaigns for %s: %d selected, %s new actions",
        len(summary["campaigns"]),
        as_of,
        selected,
        summary["new_actions"] if store else "no (dry run)",
    )
    return summary


@task(name="recover-dispatch", cache_policy=NO_CACHE)
def recover_task(as_of: date) -> dict[str, Any]:
    """Actions a dead run left in ``sending`` become ``unknown``; list the night's work."""
    dispatcher = night.build_dispatcher(get_app(), as_of)
    recovered = dispatcher.recover()
    if recovered:
        get_run_logger().warning(
            "%d actions were left in 'sending' by a run that stopped: now 'unknown' "
            "(see `nudgeflow actions --state unknown`)",
            recovered,
        )
    return {"recovered": recovered, "pending": dispatcher.pending()}


@task(name="dispatch-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def dispatch_batch_task(as_of: date, action_ids: list[str]) -> dict[str, Any]:
    """Reserve, issue, render and send one batch of actions (threads, bounded). A retry
    repeats nothing: every action continues from its committed state."""
    result = night.build_dispatcher(get_app(), as_of).dispatch(action_ids)
    logger = get_run_logger()
    for problem in result.problems[:20]:
        logger.warning("dispatch: %s", problem)
    counts = {o: result.total(o) for o in OUTCOMES if result.total(o)}
    logger.info("batch of %d actions: %s", len(action_ids), counts)
    return {"actions": len(action_ids), **counts}


def dispatch_night(as_of: date) -> dict[str, Any]:
    """Dispatch the night's pending actions, one task per batch, then one more pass for the
    actions transient provider errors deferred."""
    size = get_app().settings.dispatch.batch_size
    recovered = recover_task(as_of)
    totals: dict[str, int] = {"recovered": recovered["recovered"], "batches": 0}
    pending: list[str] = recovered["pending"]
    for attempt in range(2):
        if attempt:
            pending = recover_task(as_of)["pending"]
        for batch in night.batches(pending, size):
            night.check_lease()
            done = dispatch_batch_task(as_of, batch)
            totals["batches"] += 1
            for key, value in done.items():
                if key != "actions":
                    totals[key] = totals.get(key, 0) + value
        if not pending:
            break
    return totals


@task(name="update-fatigue", cache_policy=NO_CACHE)
def update_fatigue_task(as_of: date) -> dict[str, int]:
    """End the rests of members who engaged, then tag those who ignore every nudge."""
    result = night.fatigue(get_app(), as_of)
    get_run_logger().info(
        "fatigue as of %s: %d tagged, %d recovered", as_of, result["tagged"], result["recovered"]
    )
    return result


def summarize_night(as_of: date) -> dict[str, Any]:
    """The funnel after a night: members per stage and moves since the previous night."""
    with get_app().engine.connect() as connection:
        return funnel(connection, as_of)


@flow(name="nightly")
def nightly(as_of: date, dry_run: bool = False) -> dict[str, Any]:
    """One business night: refresh profiles, bring the ledger up to date, plan, dispatch,
    update fatigue; then record how the night ended in the run's summary and in two
    artifacts. ``dry_run`` refreshes and plans, and stores, issues and sends nothing.

    Holds the ``nightly`` lease throughout: a second run meanwhile raises ``RunInProgress``.
    """
    app = get_app()
    with night.night_lease(app, as_of):
        kind = "dry-run" if dry_run else "nightly"
        with app.engine.begin() as connection:
            run_id = start_run(connection, as_of, kind, flow_run.get_id())
        try:
            summary = {**_night(as_of, dry_run), "flow_run_id": flow_run.get_id()}
        except BaseException as exc:
            with app.engine.begin() as connection:
                finish_run(connection, run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        with app.engine.begin() as connection:
            finish_run(connection, run_id, "completed", summary=summary)
    publish_artifacts(summary)
    return summary


def _night(as_of: date, dry_run: bool) -> dict[str, Any]:
    app = get_app()
    refreshed = refresh_profiles_task(as_of)
    if dry_run:
        planned = plan_night_task(as_of, store=False)
        return {
            **summarize_night(as_of),
            "dry_run": True,
            "members": refreshed["members"],
            "plan": planned,
            "report": night.night_report(app, as_of, planned),
        }
    rewards = sync_rewards_task(as_of)
    planned = plan_night_task(as_of)
    dispatched = dispatch_night(as_of)
    fatigue = update_fatigue_task(as_of)
    return {
        **summarize_night(as_of),
        "members": refreshed["members"],
        "rewards": rewards,
        "plan": planned,
        "dispatch": dispatched,
        "fatigue": fatigue,
        "report": night.night_report(app, as_of, planned),
    }


def publish_artifacts(summary: dict[str, Any]) -> None:
    """A table and a markdown artifact of the night, per campaign (shown in the Prefect UI)."""
    report = summary.get("report", [])
    day = summary["as_of"]
    table = [{**row, "excluded": format_excluded(row["excluded"])} for row in report]
    create_table_artifact(
        key="nightly-report",
        table=table,
        description=f"nudgeflow night {day}: per campaign",
    )
    create_markdown_artifact(
        key="nightly-summary",
        markdown=report_markdown(summary),
        description=f"nudgeflow night {day}",
    )


@flow(name="backfill")
def backfill(start: date, end: date) -> list[dict[str, Any]]:
    """Run ``nightly`` for every date from ``start`` to ``end``, in order, in this process."""
    nights = []
    with night.night_lease(get_app(), start):
        day = start
        while day <= end:
            nights.append(nightly(day))
            day += timedelta(days=1)
    return nights
