"""The facts behind each exclusion (``Plan.exclusion``), for ``nudgeflow why``: exactly what
the guard looked at, from the plan and the night it was made from, nothing looked up again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest

from domain.campaign import Budget, Policy, Trigger
from domain.plan import (
    AlreadyReceived,
    BudgetSpent,
    Exclusion,
    NightInput,
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


def facts(
    n: NightInput, policy: Policy = NO_CAPS, budgets: FixedBudgets | None = None
) -> Callable[[str, int], Exclusion]:
    """Plan ``n``; return ``(campaign id, member_pk) → the facts behind the exclusion``."""
    plan = plan_night(n, policy, budgets or FixedBudgets())
    by_id = {cp.campaign.id: cp for cp in plan.campaigns}
    return lambda campaign_id, pk: plan.exclusion(n, by_id[campaign_id], pk)


def test_consent_and_fatigue_carry_the_members_facts() -> None:
    states = [
        state(1, consent=False),
        state(2, consent=False, withdrawal=("unsubscribed", 1_700_000_000)),
        state(3, fatigued=True, resting_until=AS_OF + timedelta(days=80)),
        state(4, fatigued=True),
    ]
    why = facts(night([campaign("c")], {"c": [1, 2, 3, 4]}, states))
    assert [why("c", pk) for pk in (1, 2, 3, 4)] == [
        NoConsent(None),
        NoConsent(("unsubscribed", 1_700_000_000)),
        Resting(AS_OF + timedelta(days=80)),
        Resting(None),
    ]


def test_consent_says_which_preference() -> None:
    states = [
        # Email consent withdrawn comes first, whatever the preferences.
        state(1, consent=False, paused_until=1_800_000_000, categories_out=(("surveys", 5),)),
        state(2, paused_until=1_800_000_000, categories_out=(("surveys", 5),)),
        state(3, categories_out=(("rewards", 4), ("surveys", 5))),
    ]
    c = campaign("c", category="surveys")
    why = facts(night([c], {"c": [1, 2, 3]}, states))
    assert [why("c", pk) for pk in (1, 2, 3)] == [
        NoConsent(None),
        NoConsent(None, paused_until=1_800_000_000),
        NoConsent(None, category_out=("surveys", 5)),
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
    years = [PriorAction("2026", date(2026, 1, 2)), PriorAction("2025", date(2026, 1, 3))]
    why = facts(
        night(
            [once, cooldown, yearly],
            {"once": [1], "cool": [2], "year": [3]},
            prior={"once": {1: prior}, "cool": {2: dated}, "year": {3: years}},
        )
    )
    assert why("once", 1) == AlreadyReceived(prior[1], "once", None)
    assert why("cool", 2) == AlreadyReceived(dated[0], "date", 7)
    # The later action is of another occurrence: only this year's counts.
    assert why("year", 3) == AlreadyReceived(years[0], "year", None)


def test_lower_priority_names_who_has_the_member_tonight() -> None:
    high, low = campaign("high", priority=10), campaign("low", priority=1)
    why = facts(night([low, high], {"high": [1], "low": [1, 2]}, [state(2, taken_by="stored")]))
    assert why("low", 1) == TakenTonight("high", 10)
    assert why("low", 2) == TakenTonight("stored", None)


def test_frequency_cap_names_the_first_full_cap() -> None:
    def d(days: int) -> date:
        return AS_OF - timedelta(days=days)

    states = [
        state(1, sends_on=(d(1), d(6))),  # the 7-day cap (2) is full
        state(2, sends_on=(d(8), d(15), d(20), d(29))),  # the 30-day cap (4) is full
        state(3, sends_on=(d(1), d(2), d(3), d(4))),  # both: the first in the policy
    ]
    why = facts(night([campaign("c")], {"c": [1, 2, 3]}, states), CAPS)
    assert {pk: why("c", pk) for pk in (1, 2, 3)} == {
        1: OverCap(2, 7),
        2: OverCap(4, 30),
        3: OverCap(4, 7),
    }


def test_budget_and_run_limit_carry_what_was_left_and_the_limit() -> None:
    c = campaign("c", reward=CREDIT, budget=Budget(Money(1499, "USD"), None))
    why = facts(night([c], {"c": [1, 2, 3]}), budgets=FixedBudgets({"c": 1499}))
    assert why("c", 3) == BudgetSpent(Money(1499, "USD"), Money(500, "USD"), 2)
    why = facts(night([campaign("c", max_per_run=1)], {"c": [1, 2]}))
    assert why("c", 2) == RunLimit(1)


def test_selected_held_out_and_unknown_members_have_no_exclusion() -> None:
    why = facts(night([campaign("c")], {"c": [1]}))
    with pytest.raises(ValueError, match="not an exclusion"):
        why("c", 1)
    with pytest.raises(KeyError):
        why("c", 2)
