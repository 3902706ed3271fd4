"""The ``actions`` table: storing a night's plan and listing what was stored.

``store_plan`` is idempotent: action ids are hashes of (campaign, member, occurrence), and
rows that already exist are skipped by ``ON CONFLICT DO NOTHING``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Insert, func, select
from sqlalchemy.dialects import postgresql, sqlite

from domain.campaign import Campaign
from domain.plan import Plan, PlannedAction
from nudgeflow.errors import StoreError
from nudgeflow.timeutil import SECONDS_PER_DAY
from store.schema import actions

BATCH = 5_000  # rows per executemany: big enough to amortise the round trip, small in memory


def _insert(connection: Connection) -> Insert:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(actions).on_conflict_do_nothing()
    if connection.dialect.name == "sqlite":
        return sqlite.insert(actions).on_conflict_do_nothing()
    raise StoreError(f"unsupported database {connection.dialect.name!r}: use SQLite or PostgreSQL")


def _rows(
    plan: Plan, as_of: date, as_of_end: int, campaigns: Sequence[Campaign], now: datetime
) -> Iterator[dict[str, Any]]:
    by_id = {c.id: c for c in campaigns}
    for campaign_plan in plan.campaigns:
        campaign = by_id.get(campaign_plan.campaign.id, campaign_plan.campaign)
        # The response rule is snapshotted: fatigue later judges each nudge by the rule it
        # was sent under, even if the campaign file changes.
        response_types = list(campaign.response_types)
        until = as_of_end + campaign.response_within_days * SECONDS_PER_DAY
        # The terms dispatch will honour, whatever the file says by then: the reward as
        # planned, and whether it draws on a budget (the ledger reserved accordingly).
        reward = (
            {**campaign.reward.as_dict(), "budgeted": campaign.budget is not None}
            if campaign.reward
            else None
        )
        for action in campaign_plan.actions:
            yield _row(action, as_of, reward, response_types, as_of_end, until, now)


def _row(
    action: PlannedAction,
    as_of: date,
    reward: dict[str, object] | None,
    response_types: list[str],
    response_from: int,
    response_until: int,
    now: datetime,
) -> dict[str, Any]:
    return {
        "action_id": action.action_id,
        "campaign_id": action.campaign_id,
        "member_pk": action.member_pk,
        "occurrence": action.occurrence,
        "as_of": as_of,
        "state": "held_out" if action.holdout else "planned",
        "holdout": action.holdout,
        "reward": reward,
        "cost_minor": action.cost_minor,
        "currency": action.currency,
        "template": action.template,
        "variant": action.variant,
        "response_types": response_types,
        "response_from": response_from,
        "response_until": response_until,
        "created_at": now,
        "updated_at": now,
    }


def store_plan(
    connection: Connection,
    plan: Plan,
    as_of: date,
    as_of_end: int,
    campaigns: Sequence[Campaign],
    *,
    now: datetime,
    source_digest: str | None = None,
) -> int:
    """Insert the plan's actions (``planned``, or ``held_out`` for the control group) and
    return how many were new; actions already stored are left exactly as they are (with the
    ``source_digest`` of the files that first planned them)."""
    tonight = select(func.count()).select_from(actions).where(actions.c.as_of == as_of)
    # Counting tonight's rows before and after is exact on every driver, unlike an
    # executemany rowcount; every new row carries as_of, so the difference is the new ones.
    before = connection.execute(tonight).scalar_one()
    statement = _insert(connection)
    batch: list[dict[str, Any]] = []
    created = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
    for row in _rows(plan, as_of, as_of_end, campaigns, created):
        row["source_digest"] = source_digest
        batch.append(row)
        if len(batch) >= BATCH:
            connection.execute(statement, batch)
            batch = []
    if batch:
        connection.execute(statement, batch)
    return int(connection.execute(tonight).scalar_one()) - int(before)


def list_actions(
    connection: Connection, as_of: date | None = None, member_pk: int | None = None
) -> list[dict[str, Any]]:
    """Stored actions, oldest night first (for reports and tests)."""
    query = select(actions).order_by(actions.c.as_of, actions.c.campaign_id, actions.c.member_pk)
    if as_of is not None:
        query = query.where(actions.c.as_of == as_of)
    if member_pk is not None:
        query = query.where(actions.c.member_pk == member_pk)
    return [dict(row) for row in connection.execute(query).mappings()]
