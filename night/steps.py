"""The steps of a business night as plain functions: the Prefect flow in ``flows.nightly``
wraps each in a task, and the crash tests call them directly in a child process.

Each takes the ``App`` (the composition root) and the business date; none reads the clock
for business logic. ``checkpoint(name)`` marks the named kill points of the crash tests and
is a no-op in production.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select

from bootstrap.app import App
from delivery.render import EmailRenderer
from night.dispatch import (
    BatchResult,
    Checkpoint,
    DispatchConfig,
    Dispatcher,
    no_checkpoint,
)
from night.plan import plan_stored_night, summarize_plan
from nudgeflow.errors import StoreError
from nudgeflow.timeutil import day_end
from planning.campaign_files import CampaignSet, load_campaign_set
from planning.lifecycle_file import load_lifecycle
from store import outbox
from store.actions import store_plan
from store.fatigue import update_fatigue
from store.lease import Lease, hold_lease
from store.profiles import refresh_profiles
from store.runs import supersede_later_runs
from store.schema import actions

_held = threading.local()


@contextmanager
def night_lease(app: App, as_of: date | None) -> Iterator[Lease | None]:
    """Hold the ``nightly`` lease, unless this thread already does (``nudgeflow run`` takes
    it before Prefect starts; the flow takes it again when a scheduler starts it)."""
    if getattr(_held, "lease", None) is not None:
        yield _held.lease
        return
    with hold_lease(app.engine, "nightly", as_of=as_of) as lease:
        _held.lease = lease
        try:
            yield lease
        finally:
            _held.lease = None


def check_lease() -> None:
    """Stop before the next outside effect if this thread's lease was lost (a heartbeat
    failed long enough for another run to take over)."""
    lease = getattr(_held, "lease", None)
    if lease is not None and lease.lost:
        raise StoreError(
            "the run lease was lost (its heartbeat could not be written before it expired): "
            "stopping before the next batch; run the night again"
        )


def refresh(app: App, as_of: date) -> dict[str, int]:
    """Recompute every member's stage, history, RFM and score in one transaction."""
    lifecycle = load_lifecycle(app.settings.campaigns_dir)
    with app.engine.begin() as connection:
        result = refresh_profiles(
            connection, lifecycle, as_of, day_end(as_of, app.zone), app.settings.currency
        )
        supersede_later_runs(connection, as_of)
    return {"members": result.members, "initial": result.initial}


def plan(app: App, as_of: date, *, store: bool = True) -> dict[str, Any]:
    """Select candidates, apply the guards and (unless ``store`` is False) store the actions,
    in one transaction; return the per-campaign counts."""
    campaign_set = load_campaign_set(app.settings.campaigns_dir)
    as_of_end = day_end(as_of, app.zone)
    with app.engine.begin() as connection:
        night = plan_stored_night(connection, campaign_set, as_of, as_of_end, app.zone)
        new = (
            store_plan(connection, night.plan, as_of, as_of_end, campaign_set.enabled)
            if store
            else None
        )
    return summarize_plan(night.plan, new)


def fatigue(app: App, as_of: date, checkpoint: Checkpoint = no_checkpoint) -> dict[str, int]:
    """End the rests of members who engaged, then tag those who ignore every nudge."""
    policy = load_campaign_set(app.settings.campaigns_dir).policy
    with app.engine.begin() as connection:
        result = update_fatigue(connection, policy, as_of, day_end(as_of, app.zone), app.zone)
        checkpoint("during_fatigue_update")
    return {"tagged": result.tagged, "recovered": result.recovered}


def build_dispatcher(
    app: App,
    as_of: date,
    checkpoint: Checkpoint = no_checkpoint,
    campaign_set: CampaignSet | None = None,
) -> Dispatcher:
    settings = app.settings
    campaign_set = campaign_set or load_campaign_set(settings.campaigns_dir)
    return Dispatcher(
        engine=app.engine,
        campaigns={c.id: c for c in campaign_set.enabled},
        policy=campaign_set.policy,
        issuer=app.issuer,
        sender=app.sender,
        renderer=EmailRenderer(settings.templates_dir),
        config=DispatchConfig(
            as_of=as_of,
            zone=app.zone,
            from_address=settings.email.from_address,
            base_url=settings.public_base_url,
            signing_key=settings.signing_key.get_secret_value(),
            max_workers=settings.dispatch.max_workers,
        ),
        checkpoint=checkpoint,
    )


def batches(ids: list[str], size: int) -> list[list[str]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


@dataclass
class DispatchRun:
    recovered: int  # actions a dead run left in ``sending``, now ``unknown``
    result: BatchResult
    batches: int


def dispatch(app: App, as_of: date, checkpoint: Checkpoint = no_checkpoint) -> DispatchRun:
    """Dispatch every pending action of the night in batches, then give the ones deferred by
    transient provider errors one more pass (the Prefect flow does the same with tasks)."""
    dispatcher = build_dispatcher(app, as_of, checkpoint)
    recovered = dispatcher.recover()
    result = BatchResult()
    count = 0
    for attempt in range(2):
        pending = dispatcher.pending()
        if attempt and not pending:
            break
        for batch in batches(pending, app.settings.dispatch.batch_size):
            check_lease()
            result.add(dispatcher.dispatch(batch))
            count += 1
            checkpoint("between_batches")
    return DispatchRun(recovered, result, count)


def night_report(app: App, as_of: date, planned: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per campaign: matched, excluded by reason, held out, sent, rewards issued and their
    value, failures and unknowns; the dispatch figures are read from the actions table, so a
    re-run night reports the whole night, not just what the re-run did."""
    with app.engine.connect() as connection:
        states = outbox.state_counts(connection, as_of)
        a = actions.c
        values = {
            (cid, cur): (int(n), int(v))
            for cid, cur, n, v in connection.execute(
                select(a.campaign_id, a.currency, func.count(), func.sum(a.cost_minor))
                .where(a.as_of == as_of, a.reward_ref.is_not(None))
                .group_by(a.campaign_id, a.currency)
            )
        }
    plan_rows = {c["id"]: c for c in (planned or {}).get("campaigns", [])}
    campaign_ids = sorted({c for c, _ in states} | set(plan_rows), key=str)
    order = {cid: i for i, cid in enumerate(plan_rows)}
    campaign_ids.sort(key=lambda cid: (order.get(cid, len(order)), cid))
    rows = []
    for cid in campaign_ids:
        planned_row = plan_rows.get(cid, {})
        excluded = {k: v for k, v in planned_row.get("excluded", {}).items() if v}
        issued = [(cur, n, v) for (c, cur), (n, v) in values.items() if c == cid]
        rows.append(
            {
                "id": cid,
                "matched": planned_row.get("matched"),
                "excluded": excluded,
                "held_out": states.get((cid, "held_out"), 0),
                "sent": states.get((cid, "sent"), 0),
                "rewards_issued": sum(n for _, n, _ in issued),
                "reward_value_minor": sum(v for _, _, v in issued),
                "currency": issued[0][0] if len(issued) == 1 else None,
                "failed": states.get((cid, "failed"), 0),
                "unknown": states.get((cid, "unknown"), 0),
                "pending": sum(states.get((cid, s), 0) for s in (*outbox.PENDING, "sending")),
            }
        )
    return rows
