"""The ``nightly`` flow: work the inbox (what the HTTP service accepted and has not worked
yet), refresh every profile for a business date, bring the reward ledger up to date
(funding, Stripe redemptions, expiry), clear the fatigue tags of members who responded, plan
and store the night's actions, expire undecided approvals, dispatch, tag the members who
ignored their recent nudges, and report; and ``backfill``, which runs many nights in date
order in one process, so each night sees the actions of the ones before it.

The steps are the use cases in ``night/`` (and ``inbound/`` for the inbox); here each becomes
a task that is handed the night (``night.context.Night``: the engine, the campaign set
loaded once for the run, the zone, the clock). Prefect sees a handful of tasks per night
plus one per batch of actions (``DISPATCH__BATCH_SIZE``, 200 by default), never one per
member or email.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from bootstrap.app import App, process_app
from inbound.inbox import backlog, work_inbox
from night.approvals import expire_approvals, waiting
from night.batch import OUTCOMES, BatchResult
from night.context import Night
from night.dispatch import dispatch_night
from night.dispatcher import Dispatcher
from night.dry_run import rehearse_night
from night.fatigue import recover_rested, tag_unanswered
from night.html_report import DEFAULT_DAYS as REPORT_DAYS
from night.html_report import build_report, write_report
from night.lease import night_lease
from night.plan import plan
from night.refresh import refresh
from night.report import format_excluded, night_funnel, night_report, report_markdown
from night.rewards import sync_rewards
from night.runs import AbandonedRun, close_run, nights_to_rewind, open_run
from night.workers import dispatch_shared
from nudgeflow.errors import NudgeflowError


@task(name="refresh-profiles", cache_policy=NO_CACHE)
def refresh_profiles_task(night: Night) -> dict[str, Any]:
    """Recompute every member's stage, history, RFM and score in one transaction."""
    result = refresh(night)
    get_run_logger().info("refreshed %d profiles as of %s", result["members"], night.as_of)
    return result


@task(name="sync-rewards", cache_policy=NO_CACHE)
def sync_rewards_task(app: App, night: Night) -> dict[str, int]:
    """Bring the ledger up to date before planning: fund budgets from the campaign files,
    record Stripe redemptions (when Stripe is the provider), release expired rewards."""
    as_of = night.as_of
    api = app.stripe_api() if app.settings.rewards.provider == "stripe" else None
    try:
        synced = sync_rewards(
            night.engine, night.campaigns.campaigns, api, as_of, night.zone, now=night.clock()
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


@task(name="work-inbox", cache_policy=NO_CACHE)
def work_inbox_task(app: App) -> dict[str, int]:
    """Before anything reads the members: work what the HTTP service accepted and has not
    worked yet (webhooks, live events), so the night never plans on stale consent."""
    result = work_inbox(app.engine, app.zone, app.clock)
    logger = get_run_logger()
    for problem in result.problems:
        logger.warning("inbox: %s", problem)
    logger.info("inbox: %d requests worked, %d failed", result.done, result.failed)
    return {"worked": result.done, "failed": result.failed, "retrying": result.retrying}


@task(name="inbox-backlog", cache_policy=NO_CACHE)
def inbox_backlog_task(app: App) -> dict[str, int]:
    """A dry run works nothing: it says how many requests a real run would work first."""
    pending = backlog(app.engine)
    get_run_logger().info("inbox: %d requests pending (a real run works them first)", pending)
    return {"pending": pending}


@task(name="rehearse-night", cache_policy=NO_CACHE)
def rehearse_night_task(night: Night) -> dict[str, Any]:
    """A dry run: refresh, recovery and plan in a transaction that is rolled back."""
    summary = rehearse_night(night)
    selected = sum(c["selected"] for c in summary["plan"]["campaigns"])
    get_run_logger().info(
        "dry run of %s: %d would be nudged; nothing was written", night.as_of, selected
    )
    return summary


@task(name="plan-night", cache_policy=NO_CACHE)
def plan_night_task(night: Night) -> dict[str, Any]:
    """Select candidates, apply the guards and store the actions, in one transaction."""
    summary = plan(night)
    selected = sum(c["selected"] for c in summary["campaigns"])
    get_run_logger().info(
        "planned %d campaigns for %s: %d selected, %d new actions",
        len(summary["campaigns"]),
        night.as_of,
        selected,
        summary["new_actions"],
    )
    return summary


@task(name="dispatch-batch", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def dispatch_batch_task(dispatcher: Dispatcher, action_ids: Sequence[str]) -> BatchResult:
    """Reserve, issue, render and send one batch of actions (threads, bounded). A retry
    repeats nothing: every action continues from its committed state."""
    result = dispatcher.dispatch(action_ids)
    logger = get_run_logger()
    for problem in result.problems[:20]:
        logger.warning("dispatch: %s", problem)
    counts = {o: result.total(o) for o in OUTCOMES if result.total(o)}
    logger.info("batch of %d actions: %s", len(action_ids), counts)
    return result


def dispatch_step(app: App, night: Night, run_id: int, workers: int) -> dict[str, Any]:
    """The night's dispatch: in this process (``dispatch_task_per_batch``), or shared with
    ``workers - 1`` worker processes through claimed batches (PostgreSQL only)."""
    if workers <= 1 or night.engine.dialect.name != "postgresql":
        return dispatch_task_per_batch(app, night)
    dispatcher = app.dispatcher(night)
    start_worker_flow_runs(app, night.as_of, run_id, workers - 1)
    run = dispatch_shared(
        dispatcher,
        run_id,
        night.batch_size,
        terms=app.claim_terms(),
        run_batch=lambda batch: dispatch_batch_task(dispatcher, batch),
    )
    _log_recovered(run.recovered)
    return {**run.totals(), "workers": workers}


def start_worker_flow_runs(app: App, as_of: date, run_id: int, count: int) -> None:
    """On a work pool, start ``count`` flow runs of the ``dispatch-worker`` deployment that
    join this run; run from the CLI, ``nudgeflow run --workers`` has started the worker
    processes already. Workers that never start only leave more batches to this run."""
    from prefect.deployments import run_deployment
    from prefect.runtime import deployment

    logger = get_run_logger()
    if deployment.id is None:
        logger.info("dispatch shared with the workers that join run %d", run_id)
        return
    name = app.settings.dispatch.worker_deployment
    for n in range(count):
        try:
            run_deployment(
                name=name,
                parameters={"as_of": as_of, "run_id": run_id},
                flow_run_name=f"dispatch-worker-{as_of.isoformat()}-{n + 1}",
                timeout=0,
                as_subflow=False,
            )
        except Exception as exc:  # the run works every batch itself if need be
            logger.warning("could not start dispatch worker %d from %s: %s", n + 1, name, exc)


def _log_recovered(recovered: int) -> None:
    if recovered:
        get_run_logger().warning(
            "%d actions were left in 'sending' by a run that stopped: now 'unknown' "
            "(see `nudgeflow actions --state unknown`)",
            recovered,
        )


def dispatch_task_per_batch(app: App, night: Night) -> dict[str, Any]:
    """The night's dispatch loop (``night.dispatch``), each batch a ``dispatch-batch`` task."""
    dispatcher = app.dispatcher(night)
    run = dispatch_night(
        dispatcher,
        night.batch_size,
        run_batch=lambda batch: dispatch_batch_task(dispatcher, batch),
    )
    _log_recovered(run.recovered)
    return run.totals()


@task(name="expire-approvals", cache_policy=NO_CACHE)
def expire_approvals_task(night: Night) -> int:
    """Before dispatch: approvals undecided past their time expire and release their
    reservations (``night.approvals``)."""
    expired = expire_approvals(night.engine, now=night.clock(), business_date=night.as_of)
    if expired:
        get_run_logger().info("approvals: %d expired undecided, reservations released", expired)
    return expired


@task(name="recover-fatigue", cache_policy=NO_CACHE)
def recover_fatigue_task(night: Night) -> int:
    """Before the plan: end the rests of members who responded, so tonight can select them."""
    recovered = recover_rested(night)
    get_run_logger().info("fatigue as of %s: %d recovered", night.as_of, recovered)
    return recovered


@task(name="tag-fatigue", cache_policy=NO_CACHE)
def tag_fatigue_task(night: Night) -> int:
    """After dispatch: tag the members whose recent closed nudges all went unanswered."""
    tagged = tag_unanswered(night)
    get_run_logger().info("fatigue as of %s: %d tagged", night.as_of, tagged)
    return tagged


@task(name="html-report", cache_policy=NO_CACHE)
def write_report_task(app: App, night: Night) -> str | None:
    """The HTML report of the nights up to this one (``nudgeflow report``'s default period),
    written to ``NUDGEFLOW_REPORTS_DIR`` as ``report-<night>.html``; its path, or None when
    it could not be written (said in the log: the night's work is done either way)."""
    out = app.settings.reports_dir / f"report-{night.as_of.isoformat()}.html"
    try:
        built = build_report(
            night.engine,
            night.campaigns,
            start=night.as_of - timedelta(days=REPORT_DAYS - 1),
            end=night.as_of,
            zone=night.zone,
            currency=night.currency,
            now=app.clock(),
        )
        path = write_report(built, out)
    except NudgeflowError as exc:
        get_run_logger().warning("no HTML report for %s: %s", night.as_of, exc)
        return None
    get_run_logger().info("HTML report for %s: %s", night.as_of, path)
    return str(path)


def night_run_name() -> str:
    """Flow runs are named for their night: ``nightly-2026-11-28``, or
    ``nightly-2026-11-28-dry-run`` for a dry run (which leaves no other trace)."""
    parameters = flow_run.parameters
    name = f"nightly-{parameters['as_of']}"
    return f"{name}-dry-run" if parameters.get("dry_run") else name


@flow(name="nightly", flow_run_name=night_run_name)
def nightly(
    as_of: date, dry_run: bool = False, rewind: bool = False, workers: int | None = None
) -> dict[str, Any]:
    """One business night: work the inbox, refresh profiles, bring the ledger up to date,
    clear the fatigue tags of members who responded, plan, dispatch, tag the members who
    ignored their recent nudges; then record how the night ended in the run's summary and in
    two artifacts. ``dry_run`` rehearses refresh, recovery and plan in a transaction that is
    rolled back: it writes nothing at all, not even a run record or the lease, and reports
    the inbox's backlog instead of working it. A night before nights already run is refused
    (``RewindRefused``) unless ``rewind`` says to rewind them.

    Holds the ``nightly`` lease throughout: a second run meanwhile raises ``RunInProgress``.
    With ``workers`` above 1 (default ``DISPATCH__WORKERS``) on PostgreSQL, the dispatch
    is shared with worker processes that join this run (``night.workers``).
    """
    app = process_app()
    night = app.night(as_of)  # the campaign files are read once, here, for the whole run
    if dry_run:
        summary = {
            **rehearse_night_task(night),
            "inbox": inbox_backlog_task(app),
            "flow_run_id": flow_run.get_id(),
        }
        publish_artifacts(summary)
        return summary
    with night_lease(app.engine, as_of, app.clock):
        rewound = nights_to_rewind(app.engine, as_of, rewind=rewind)
        opened = open_run(
            app.engine, as_of, "nightly", flow_run.get_id(), app.clock, night.provenance
        )
        mark_flow_runs_crashed(opened.crashed)
        try:
            summary = {
                **_night(app, night, opened.run_id, workers or app.settings.dispatch.workers),
                "rewound": [day.isoformat() for day in rewound],
                "flow_run_id": flow_run.get_id(),
            }
            summary["html_report"] = write_report_task(app, night)
        except BaseException as exc:
            error = f"{type(exc).__name__}: {exc}"
            close_run(app.engine, opened.run_id, "failed", app.clock, error=error)
            raise
        close_run(app.engine, opened.run_id, "completed", app.clock, summary=summary)
    publish_artifacts(summary)
    return summary


def _night(app: App, night: Night, run_id: int, workers: int) -> dict[str, Any]:
    inbox = work_inbox_task(app)
    refreshed = refresh_profiles_task(night)
    rewards = sync_rewards_task(app, night)
    recovered = recover_fatigue_task(night)
    planned = plan_night_task(night)
    expired = expire_approvals_task(night)
    dispatched = dispatch_step(app, night, run_id, workers)
    tagged = tag_fatigue_task(night)
    return {
        **night_funnel(night),
        "members": refreshed["members"],
        "inbox": inbox,
        "rewards": rewards,
        "plan": planned,
        "dispatch": dispatched,
        "approvals": {"expired": expired, "waiting": waiting(night.engine)},
        "fatigue": {"tagged": tagged, "recovered": recovered},
        "report": night_report(night, planned),
    }


def mark_flow_runs_crashed(abandoned: Sequence[AbandonedRun]) -> None:
    """Mark the Prefect flow runs of runs a dead process left behind as crashed too, so the
    Prefect UI stops showing them running; a server that cannot be told is only logged."""
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    logger = get_run_logger()
    for run in abandoned:
        logger.warning(
            "run %d (night %s) was left running by a dead process: crashed", run.run_id, run.as_of
        )
        if run.flow_run_id is None:
            continue
        try:
            with get_client(sync_client=True) as client:
                client.set_flow_run_state(
                    UUID(run.flow_run_id),
                    Crashed(message="its process stopped; the next run took over the lease"),
                    force=True,
                )
        except Exception as exc:  # the record is already right; the UI is a courtesy
            logger.warning("could not mark flow run %s as crashed: %s", run.flow_run_id, exc)


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
    markdown = report_markdown(summary)
    if summary.get("html_report"):
        markdown += (
            f"\n\nThe HTML report of the {REPORT_DAYS} nights to {day} (stages, pathways, "
            f"sends and responses, spend against budget, uplift): `{summary['html_report']}`\n"
        )
    create_markdown_artifact(
        key="nightly-summary",
        markdown=markdown,
        description=f"nudgeflow night {day}",
    )


@flow(name="backfill")
def backfill(start: date, end: date, rewind: bool = False) -> list[dict[str, Any]]:
    """Run ``nightly`` for every date from ``start`` to ``end``, in order, in this process."""
    nights = []
    app = process_app()
    with night_lease(app.engine, start, app.clock):
        # The nights from start to end run again in order; only those after end would be
        # left rewound, so only they need --rewind.
        nights_to_rewind(app.engine, start, rewind=rewind, through=end)
        day = start
        while day <= end:
            nights.append(nightly(day, rewind=True))
            day += timedelta(days=1)
    return nights
