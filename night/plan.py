"""Plan a night: candidates and guard facts from the store, guards in the pure planner.

``plan_stored_night`` is the one place that turns a database (refreshed for ``as_of``) and a
campaign set into a ``Plan``. The nightly run clears the fatigue tags of members who
responded just before it plans (``night.fatigue.recover_rested``) and stores the result;
``rehearse`` refreshes, recovers and plans inside a transaction that is rolled back, for
``nudgeflow plan`` and ``nudgeflow why``, so they agree with the run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine

from domain.plan import NightInput, Plan
from night.context import Night
from nudgeflow.timeutil import day_end
from planning.campaign_files import CampaignSet
from planning.planner import plan_night
from store.actions import store_plan
from store.audience_sql import select_candidates
from store.fatigue import recover_fatigued
from store.guard_facts import StoredBudgets, gather_guards
from store.profiles import refresh_profiles
from store.referral_facts import gather_referrals
from store.runs import previous_completed_as_of
from store.sources import record_source


@dataclass(frozen=True)
class StoredNight:
    """A plan and what it was made from (``nudgeflow why`` needs the candidates too)."""

    plan: Plan
    candidates: dict[str, list[int]]
    previous_as_of: date | None


def plan_stored_night(
    connection: Connection, campaign_set: CampaignSet, as_of: date, as_of_end: int, zone: ZoneInfo
) -> StoredNight:
    """Plan ``as_of`` from the profiles and actions in the database (writes nothing).

    The members' guard facts are let go once planned: the night's actions are stored next,
    and at a million members the facts weigh more than the plan.
    """
    return _plan_with_facts(connection, campaign_set, as_of, as_of_end, zone)[0]


def _plan_with_facts(
    connection: Connection, campaign_set: CampaignSet, as_of: date, as_of_end: int, zone: ZoneInfo
) -> tuple[StoredNight, NightInput]:
    campaigns = campaign_set.enabled
    previous = previous_completed_as_of(connection, as_of)
    candidates = select_candidates(connection, campaigns, as_of, as_of_end, previous, zone)
    states, prior = gather_guards(
        connection, campaigns, candidates, campaign_set.policy, as_of, as_of_end
    )
    referrals = gather_referrals(
        connection, campaigns, candidates, as_of, as_of_end, previous, zone
    )
    night = NightInput(as_of, campaigns, states, candidates, prior, referrals)
    budgets = StoredBudgets(connection, campaigns, as_of)
    plan = plan_night(night, campaign_set.policy, budgets)
    return StoredNight(plan, candidates, previous), night


@dataclass(frozen=True)
class Rehearsal:
    """A night refreshed and planned inside a transaction that will be rolled back."""

    connection: Connection  # inside the transaction: reads see the rehearsed night
    campaign_set: CampaignSet
    night: StoredNight
    facts: NightInput  # what the plan was made from: the facts behind its exclusions
    as_of: date
    as_of_end: int
    zone: ZoneInfo


@contextmanager
def rehearse(
    engine: Engine, campaign_set: CampaignSet, zone: ZoneInfo, currency: str, as_of: date
) -> Iterator[Rehearsal]:
    """Refresh the profiles for ``as_of`` and plan it, exactly as the nightly run would, and
    roll everything back on leaving: nothing is written."""
    as_of_end = day_end(as_of, zone)
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            refresh_profiles(connection, campaign_set.lifecycle, as_of, as_of_end, currency)
            recover_fatigued(connection, campaign_set.policy, as_of, as_of_end, zone)
            night, facts = _plan_with_facts(connection, campaign_set, as_of, as_of_end, zone)
            yield Rehearsal(connection, campaign_set, night, facts, as_of, as_of_end, zone)
        finally:
            transaction.rollback()


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


def plan(night: Night) -> dict[str, Any]:
    """Select candidates, apply the guards and store the actions, in one transaction; return
    the per-campaign counts (a dry run rehearses instead: ``night.dry_run``)."""
    campaign_set = night.campaigns
    provenance = night.provenance
    with night.engine.begin() as connection:
        stored = plan_stored_night(connection, campaign_set, night.as_of, night.end, night.zone)
        now = night.clock()
        if provenance is not None:
            record_source(connection, provenance, now=now)
        new = store_plan(
            connection,
            stored.plan,
            night.as_of,
            night.end,
            campaign_set.enabled,
            now=now,
            source_digest=provenance.digest if provenance is not None else None,
        )
    return summarize_plan(stored.plan, new)
