"""Plan a night: candidates and guard facts from the store, guards in the pure planner.

``plan_stored_night`` is the one place that turns a database (refreshed for ``as_of``) and a
campaign set into a ``Plan``. The nightly run stores the result; ``nudgeflow plan`` and
``nudgeflow why`` only look at it. The run clears the fatigue tags of members who responded
just before it plans (``night.fatigue.recover_rested``); ``rehearse_plan`` does the same
inside a transaction its caller rolls back, so a dry run, ``plan`` and ``why`` agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from domain.plan import NightInput, Plan
from night.context import Night
from planning.campaign_files import CampaignSet
from planning.planner import plan_night
from store.actions import store_plan
from store.audience_sql import StoredBudgets, gather_guards, select_candidates
from store.fatigue import recover_fatigued
from store.runs import previous_completed_as_of


@dataclass(frozen=True)
class StoredNight:
    """A plan and what it was made from (``nudgeflow why`` needs the candidates too)."""

    plan: Plan
    candidates: dict[str, list[int]]
    previous_as_of: date | None


def plan_stored_night(
    connection: Connection, campaign_set: CampaignSet, as_of: date, as_of_end: int, zone: ZoneInfo
) -> StoredNight:
    """Plan ``as_of`` from the profiles and actions in the database (writes nothing)."""
    campaigns = campaign_set.enabled
    previous = previous_completed_as_of(connection, as_of)
    candidates = select_candidates(connection, campaigns, as_of, as_of_end, previous, zone)
    states, prior = gather_guards(
        connection, campaigns, candidates, campaign_set.policy, as_of, as_of_end
    )
    night = NightInput(as_of, campaigns, states, candidates, prior)
    budgets = StoredBudgets(connection, campaigns, as_of)
    return StoredNight(plan_night(night, campaign_set.policy, budgets), candidates, previous)


def rehearse_plan(
    connection: Connection, campaign_set: CampaignSet, as_of: date, as_of_end: int, zone: ZoneInfo
) -> StoredNight:
    """Recover rested members who responded, then plan, as the run would. This writes (the
    recovery): call it inside a transaction that is rolled back."""
    recover_fatigued(connection, campaign_set.policy, as_of, as_of_end, zone)
    return plan_stored_night(connection, campaign_set, as_of, as_of_end, zone)


def summarize_plan(plan: Plan, new_actions: int | None = None) -> dict[str, Any]:
    """Per-campaign counts of a plan (no member lists), for run summaries and reports."""
    return {
        "new_actions": new_actions,
        "campaigns": [
            {
                "id": c.campaign.id,
                "priority": c.campaign.priority,
                "matched": c.matched,
                "selected": c.selected,
                "held_out": c.excluded["holdout"],
                "excluded": dict(c.excluded),
            }
            for c in plan.campaigns
        ],
    }


def plan(night: Night, *, store: bool = True) -> dict[str, Any]:
    """Select candidates, apply the guards and store the actions, in one transaction; return
    the per-campaign counts. With ``store`` False (a dry run) nothing is kept: the night's
    fatigue recovery is rehearsed with the plan and rolled back with it."""
    campaign_set = night.campaigns
    if not store:
        with night.engine.connect() as connection:
            transaction = connection.begin()
            try:
                stored = rehearse_plan(connection, campaign_set, night.as_of, night.end, night.zone)
            finally:
                transaction.rollback()
        return summarize_plan(stored.plan, None)
    with night.engine.begin() as connection:
        stored = plan_stored_night(connection, campaign_set, night.as_of, night.end, night.zone)
        new = store_plan(
            connection, stored.plan, night.as_of, night.end, campaign_set.enabled, now=night.clock()
        )
    return summarize_plan(stored.plan, new)
