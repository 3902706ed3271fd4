"""The facts the planner keeps behind each exclusion (``Plan.exclusion``), for ``nudgeflow
why``: exactly what the guard looked at, with nothing looked up again."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from domain.campaign import Budget, Trigger
from domain.plan import (
    AlreadyReceived,
    BudgetSpent,
    NoConsent,
    OverCap,
    PriorAction,
    Resting,
    RunLimit,
    TakenTonight,
)
from nudgeflow.money import Money
from planning.planner import FixedBudgets, plan_night
from tests.unit.planning.test_planner import AS_OF, CAPS, CREDIT, NO_CAPS, campaign, night, state

D = AS_OF - timedelta(days=1)


def test_consent_and_fatigue_carry_the_members_facts() -> None:
    states = [
        state(1, consent=False),
        state(2, consent=False, withdrawal=("unsubscribed", 1_700_000_000)),
        state(3, fatigued=True, resting_until=AS_OF + timedelta(days=80)),
        state(4, fatigued=True),
    ]
    plan = plan_night(night([campaign("c")], {"c": [1, 2, 3, 4]}, states), NO_CAPS, FixedBudgets())
    cp = plan.campaigns[0]
    assert [plan.exclusion(cp, pk) for pk in (1, 2, 3, 4)] == [
        NoConsent(None),
        NoConsent(("unsubscribed", 1_700_000_000)),
        Resting(AS_OF + timedelta(days=80)),
        Resting(None),
    ]


def test_already_received_names_the_latest_action_that_counts() -> None:
    once = campaign("once")
    cooldown = campaign("cool", once_per_member=False, cooldown_days=7)
    yearly = campaign("year", trigger=Trigger("birthday"), once_per_member=False)
    prior = [
        PriorAction("once", AS_OF - timedelta(days=40)),
        PriorAction("once", AS_OF - timedelta(days=3)),
    ]
    dated = [
        PriorAction((AS_OF - timedelta(days=3)).isoformat(), AS_OF - timedelta(days=3)),
        PriorAction((AS_OF - timedelta(days=9)).isoformat(), AS_OF - timedelta(days=9)),
    ]
    years = [PriorAction("2026", date(2026, 1, 2)), PriorAction("2025", date(2025, 12, 30))]
    n = night(
        [once, cooldown, yearly],
        {"once": [1], "cool": [2], "year": [3]},
        prior={"once": {1: prior}, "cool": {2: dated}, "year": {3: years}},
    )
    plan = plan_night(n, NO_CAPS, FixedBudgets())
    by_id = {cp.campaign.id: cp for cp in plan.campaigns}
    assert plan.exclusion(by_id["once"], 1) == AlreadyReceived(prior[1], "once", None)
    assert plan.exclusion(by_id["cool"], 2) == AlreadyReceived(dated[0], "date", 7)
    assert plan.exclusion(by_id["year"], 3) == AlreadyReceived(years[0], "year", None)


def test_lower_priority_names_who_has_the_member_tonight() -> None:
    high, low = campaign("high", priority=10), campaign("low", priority=1)
    n = night([low, high], {"high": [1], "low": [1, 2]}, [state(2, taken_by="stored")])
    plan = plan_night(n, NO_CAPS, FixedBudgets())
    low_plan = next(cp for cp in plan.campaigns if cp.campaign.id == "low")
    assert plan.exclusion(low_plan, 1) == TakenTonight("high", 10)
    assert plan.exclusion(low_plan, 2) == TakenTonight("stored", None)


def test_frequency_cap_names_the_first_full_cap() -> None:
    def d(days: int) -> date:
        return AS_OF - timedelta(days=days)

    states = [
        state(1, sends_on=(d(1), d(6))),  # the 7-day cap (2) is full
        state(2, sends_on=(d(8), d(15), d(20), d(29))),  # the 30-day cap (4) is full
        state(3, sends_on=(d(1), d(2), d(3), d(4))),  # both: the first in the policy
    ]
    plan = plan_night(night([campaign("c")], {"c": [1, 2, 3]}, states), CAPS, FixedBudgets())
    cp = plan.campaigns[0]
    assert {pk: plan.exclusion(cp, pk) for pk in (1, 2, 3)} == {
        1: OverCap(2, 7),
        2: OverCap(4, 30),
        3: OverCap(4, 7),
    }


def test_budget_and_run_limit_carry_what_was_left_and_the_limit() -> None:
    budget = Budget(Money(1499, "USD"), None)
    c = campaign("c", reward=CREDIT, budget=budget)
    plan = plan_night(night([c], {"c": [1, 2, 3]}), NO_CAPS, FixedBudgets({"c": 1499}))
    cp = plan.campaigns[0]
    assert cp.budget_left == 1499
    assert plan.exclusion(cp, 3) == BudgetSpent(Money(1499, "USD"), Money(500, "USD"), 2)

    limited = campaign("c", max_per_run=1)
    plan = plan_night(night([limited], {"c": [1, 2]}), NO_CAPS, FixedBudgets())
    assert plan.exclusion(plan.campaigns[0], 2) == RunLimit(1)


def test_selected_held_out_and_unknown_members_have_no_exclusion() -> None:
    plan = plan_night(night([campaign("c")], {"c": [1]}), NO_CAPS, FixedBudgets())
    cp = plan.campaigns[0]
    with pytest.raises(ValueError, match="not an exclusion"):
        plan.exclusion(cp, 1)
    with pytest.raises(KeyError):
        plan.exclusion(cp, 2)


def test_the_plan_keeps_references_not_copies() -> None:
    n = night([campaign("c")], {"c": [1, 2]}, [state(2, consent=False)])
    plan = plan_night(n, NO_CAPS, FixedBudgets())
    assert plan.members is n.members
