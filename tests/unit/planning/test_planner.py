"""The pure nightly planner: each guard, their order and counts, occurrences and action ids."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pytest

from domain.campaign import Campaign, FrequencyCap, Policy, Reward, Trigger
from domain.keys import action_id, occurrence_for
from domain.plan import EXCLUSION_REASONS, CampaignPlan, MemberState, NightInput, PriorAction
from nudgeflow.money import Money
from planning.planner import FixedBudgets, is_held_out, plan_night
from tests.campaigns import make_campaign

AS_OF = date(2026, 3, 10)
BASE = make_campaign("base", name="Base", template="base_email", subject="Hello")
NO_CAPS = Policy((), 3, "nudge-fatigued", 90, "09:00", "18:00", "member")
CAPS = replace(NO_CAPS, frequency_caps=(FrequencyCap(2, 7), FrequencyCap(4, 30)))
CREDIT = Reward("credit", Money(500, "USD"), amount=Money(500, "USD"))


def campaign(campaign_id: str, **changes: Any) -> Campaign:
    return replace(BASE, id=campaign_id, **changes)


def state(pk: int, **changes: Any) -> MemberState:
    return replace(MemberState(member_id=f"m{pk:03d}", consent=True, fatigued=False), **changes)


def night(
    campaigns: Sequence[Campaign],
    candidates: Mapping[str, Sequence[int]],
    states: Sequence[MemberState] = (),
    prior: Mapping[str, Mapping[int, Sequence[PriorAction]]] | None = None,
    as_of: date = AS_OF,
) -> NightInput:
    """Members without an explicit state get a plain consenting one."""
    members = {pk: state(pk) for pks in candidates.values() for pk in pks}
    members.update({int(s.member_id[1:]): s for s in states})
    return NightInput(as_of, campaigns, members, candidates, prior or {})


def plan_one(n: NightInput, policy: Policy = NO_CAPS, budgets: FixedBudgets | None = None) -> Any:
    plan = plan_night(n, policy, budgets or FixedBudgets())
    assert len(plan.campaigns) == 1
    return plan.campaigns[0]


def selected(cp: CampaignPlan) -> list[int]:
    return [a.member_pk for a in cp.actions if not a.holdout]


def counts(cp: CampaignPlan) -> dict[str, int]:
    return {k: v for k, v in cp.excluded.items() if v}


# --- occurrences, ids, holdout draw ------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"once_per_member": True}, "once"),
        ({"once_per_member": False, "cooldown_days": 30}, "2026-03-10"),
        ({"once_per_member": False}, "2026-03-10"),
        ({"trigger": Trigger("birthday"), "once_per_member": False}, "2026"),
        ({"trigger": Trigger("anniversary"), "once_per_member": True}, "2026"),
    ],
)
def test_occurrence_follows_the_campaign_kind(changes: dict[str, Any], expected: str) -> None:
    assert occurrence_for(campaign("c", **changes), AS_OF) == expected


def test_action_id_is_a_sha256_prefix_of_the_three_parts() -> None:
    expected = hashlib.sha256(b"c\x1fm1\x1fonce").hexdigest()[:32]
    assert action_id("c", "m1", "once") == expected
    assert len(expected) == 32
    # The separator keeps ("ab", "c") and ("a", "bc") apart.
    assert action_id("ab", "c", "once") != action_id("a", "bc", "once")


def test_holdout_draw_is_stable_and_salted() -> None:
    ids = [f"m{i}" for i in range(2000)]
    first = [is_held_out("s1", "c", m, 25) for m in ids]
    assert first == [is_held_out("s1", "c", m, 25) for m in ids]
    assert first != [is_held_out("s2", "c", m, 25) for m in ids]
    assert first != [is_held_out("s1", "other", m, 25) for m in ids]
    assert not any(is_held_out("s1", "c", m, 0) for m in ids)
    # Raising the percent only adds members to the control group.
    wider = [is_held_out("s1", "c", m, 50) for m in ids]
    assert all(w for f, w in zip(first, wider, strict=True) if f)


# --- ordering, matched, outcomes -------------------------------------------------------


def test_campaigns_run_by_priority_then_id_and_disabled_ones_are_skipped() -> None:
    campaigns = [
        campaign("b", priority=5),
        campaign("a", priority=5),
        campaign("z", priority=9),
        campaign("off", priority=100, enabled=False),
    ]
    plan = plan_night(night(campaigns, {c.id: [1] for c in campaigns}), NO_CAPS, FixedBudgets())
    assert [cp.campaign.id for cp in plan.campaigns] == ["z", "a", "b"]
    assert [cp.outcomes[1] for cp in plan.campaigns] == ["selected"] + ["lower_priority"] * 2


def test_actions_come_in_member_id_order_with_everything_filled_in() -> None:
    c = campaign("c", reward=CREDIT, template="credit_email")
    states = [replace(state(pk), member_id=mid) for pk, mid in ((1, "m003"), (3, "m001"))]
    n = NightInput(AS_OF, [c], {1: states[0], 3: states[1]}, {"c": [1, 3]}, {})
    cp = plan_one(n)
    assert [a.member_id for a in cp.actions] == ["m001", "m003"]
    first = cp.actions[0]
    assert first.member_pk == 3
    assert first.action_id == action_id("c", "m001", "once")
    assert first.occurrence == "once"
    assert (first.holdout, first.reward, first.template) == (False, CREDIT, "credit_email")
    assert (first.cost_minor, first.currency) == (500, "USD")
    assert cp.matched == 2
    assert cp.selected == 2
    assert cp.outcomes == {1: "selected", 3: "selected"}


def test_no_reward_costs_nothing() -> None:
    cp = plan_one(night([campaign("c")], {"c": [1]}))
    assert (cp.actions[0].cost_minor, cp.actions[0].currency, cp.actions[0].reward) == (
        0,
        None,
        None,
    )


def test_no_candidates_is_an_empty_campaign_plan() -> None:
    cp = plan_one(night([campaign("c")], {}))
    assert (cp.matched, cp.actions, cp.outcomes) == (0, [], {})
    assert set(cp.excluded) == set(EXCLUSION_REASONS)


def test_a_candidate_without_member_state_is_a_contract_error() -> None:
    with pytest.raises(ValueError, match="without a MemberState"):
        plan_night(NightInput(AS_OF, [campaign("c")], {}, {"c": [7]}, {}), NO_CAPS, FixedBudgets())


# --- each guard ------------------------------------------------------------------------


def test_consent_guard() -> None:
    cp = plan_one(night([campaign("c")], {"c": [1, 2]}, [state(1, consent=False)]))
    assert counts(cp) == {"consent": 1}
    assert cp.outcomes == {1: "consent", 2: "selected"}


def test_fatigued_guard() -> None:
    cp = plan_one(night([campaign("c")], {"c": [1, 2]}, [state(2, fatigued=True)]))
    assert counts(cp) == {"fatigued": 1}
    assert selected(cp) == [1]


def test_consent_comes_before_fatigue() -> None:
    cp = plan_one(night([campaign("c")], {"c": [1]}, [state(1, consent=False, fatigued=True)]))
    assert counts(cp) == {"consent": 1}


def test_a_pause_is_no_consent_for_every_campaign() -> None:
    paused = state(1, paused_until=1_800_000_000, fatigued=True)
    n = night(
        [campaign("a", category="surveys"), campaign("b")], {"a": [1, 2], "b": [1, 2]}, [paused]
    )
    plan = plan_night(n, NO_CAPS, FixedBudgets())
    assert [cp.outcomes for cp in plan.campaigns] == [
        {1: "consent", 2: "selected"},
        {1: "consent", 2: "lower_priority"},
    ]


def test_a_category_left_is_no_consent_for_that_category_only() -> None:
    left = state(1, categories_out=(("surveys", 1_700_000_000),), fatigued=True)
    survey = campaign("survey", category="surveys", priority=10)
    reward = campaign("reward", category="rewards", priority=5)
    plain = campaign("plain", priority=1)
    n = night(
        [survey, reward, plain],
        {"survey": [1, 2], "reward": [1, 3], "plain": [1, 4]},
        [left, state(3, categories_out=(("rewards", 1), ("surveys", 2)))],
    )
    plan = plan_night(n, NO_CAPS, FixedBudgets())
    assert {cp.campaign.id: cp.outcomes for cp in plan.campaigns} == {
        "survey": {1: "consent", 2: "selected"},
        "reward": {1: "fatigued", 3: "consent"},  # fatigue applies where consent does not
        "plain": {1: "fatigued", 4: "selected"},
    }
    assert {cp.campaign.id: counts(cp) for cp in plan.campaigns}["survey"] == {"consent": 1}


def _prior(*actions: tuple[str, date]) -> list[PriorAction]:
    return [PriorAction(occurrence, day) for occurrence, day in actions]


def test_once_campaign_already_received_with_any_prior_action() -> None:
    prior = {"c": {1: _prior(("once", AS_OF - timedelta(days=700))), 2: []}}
    cp = plan_one(night([campaign("c")], {"c": [1, 2]}, prior=prior))
    assert cp.outcomes == {1: "already_received", 2: "selected"}


def test_year_campaign_already_received_only_in_the_same_year() -> None:
    c = campaign("bday", trigger=Trigger("birthday"), once_per_member=False)
    prior = {
        "bday": {
            1: _prior(("2026", date(2026, 1, 2))),
            2: _prior(("2025", date(2025, 12, 31))),
        }
    }
    cp = plan_one(night([c], {"bday": [1, 2]}, prior=prior))
    assert cp.outcomes == {1: "already_received", 2: "selected"}
    assert cp.actions[0].occurrence == "2026"


def test_cooldown_counts_days_strictly_inside_it_and_tonight() -> None:
    c = campaign("cool", once_per_member=False, cooldown_days=30)
    prior = {
        "cool": {
            1: _prior(("x", AS_OF - timedelta(days=29))),  # 29 < 30: still cooling down
            2: _prior(("x", AS_OF - timedelta(days=30))),  # 30 days ago: eligible again
            3: _prior(("x", AS_OF)),  # stored tonight already
        }
    }
    cp = plan_one(night([c], {"cool": [1, 2, 3]}, prior=prior))
    assert cp.outcomes == {1: "already_received", 2: "selected", 3: "already_received"}
    assert cp.actions[0].occurrence == AS_OF.isoformat()


def test_date_campaign_without_cooldown_only_blocks_the_same_date() -> None:
    c = campaign("daily", once_per_member=False, trigger=Trigger("event", types=("purchase",)))
    prior = {
        "daily": {
            1: _prior((AS_OF.isoformat(), AS_OF)),
            2: _prior(((AS_OF - timedelta(days=1)).isoformat(), AS_OF - timedelta(days=1))),
        }
    }
    cp = plan_one(night([c], {"daily": [1, 2]}, prior=prior))
    assert cp.outcomes == {1: "already_received", 2: "selected"}


def test_prior_actions_of_other_campaigns_do_not_count() -> None:
    prior = {"other": {1: _prior(("once", AS_OF))}}
    cp = plan_one(night([campaign("c")], {"c": [1]}, prior=prior))
    assert cp.outcomes == {1: "selected"}


def test_lower_priority_via_a_stored_action_tonight() -> None:
    cp = plan_one(night([campaign("c")], {"c": [1, 2]}, [state(1, taken_by="other")]))
    assert cp.outcomes == {1: "lower_priority", 2: "selected"}


def test_lower_priority_via_an_earlier_campaign_of_this_run() -> None:
    high, low = campaign("high", priority=10), campaign("low", priority=1)
    plan = plan_night(night([low, high], {"high": [1], "low": [1, 2]}), NO_CAPS, FixedBudgets())
    by_id = {cp.campaign.id: cp for cp in plan.campaigns}
    assert by_id["high"].outcomes == {1: "selected"}
    assert by_id["low"].outcomes == {1: "lower_priority", 2: "selected"}
    assert counts(by_id["low"]) == {"lower_priority": 1}


def test_a_holdout_of_an_earlier_campaign_leaves_the_member_free_for_later_ones() -> None:
    # Held out means "as if the campaign did not exist that night".
    high = campaign("high", priority=10, holdout_percent=99.99, holdout_salt="s")
    member = next(i for i in range(100) if is_held_out("s", "high", f"m{i:03d}", 99.99))
    plan = plan_night(
        night([high, campaign("low")], {"high": [member], "low": [member]}),
        NO_CAPS,
        FixedBudgets(),
    )
    assert [cp.outcomes[member] for cp in plan.campaigns] == ["holdout", "selected"]


def test_frequency_caps_count_rolling_windows() -> None:
    def d(days: int) -> date:
        return AS_OF - timedelta(days=days)

    states = [
        state(1, sends_on=(d(days=1), d(days=6))),  # 2 in 7 days: tonight would be a 3rd
        state(2, sends_on=(d(days=1), d(days=7))),  # the 7-day-old one is out of the window
        state(3, sends_on=(d(days=8), d(days=15), d(days=20), d(days=29))),  # 4 in 30 days
        state(4, sends_on=(d(days=8), d(days=15), d(days=20), d(days=30))),  # 3 in 30 days
        state(5, sends_on=(AS_OF, d(days=2))),  # a nudge stored for tonight counts
    ]
    cp = plan_one(night([campaign("c")], {"c": [1, 2, 3, 4]}, states), CAPS)
    assert cp.outcomes == {
        1: "frequency_cap",
        2: "selected",
        3: "frequency_cap",
        4: "selected",
    }
    # Member 5 has a stored action tonight, so lower_priority fires first.
    cp = plan_one(night([campaign("c")], {"c": [5]}, [replace(states[4], taken_by="other")]), CAPS)
    assert cp.outcomes == {5: "lower_priority"}
    cp = plan_one(night([campaign("c")], {"c": [5]}, [states[4]]), CAPS)
    assert cp.outcomes == {5: "frequency_cap"}


def test_no_caps_means_no_frequency_exclusions() -> None:
    states = [state(1, sends_on=(AS_OF,) * 10)]
    assert plan_one(night([campaign("c")], {"c": [1]}, states)).outcomes == {1: "selected"}


def test_holdout_is_recorded_not_sent_and_costs_nothing() -> None:
    c = campaign("c", holdout_percent=30, holdout_salt="q4", reward=CREDIT)
    pks = list(range(1, 201))
    cp = plan_one(night([c], {"c": pks}), budgets=FixedBudgets({"c": 10**9}))
    held = [a for a in cp.actions if a.holdout]
    assert cp.excluded["holdout"] == len(held) > 0
    assert all(is_held_out("q4", "c", a.member_id, 30) for a in held)
    assert all((a.cost_minor, a.currency) == (0, None) for a in held)
    assert all(cp.outcomes[a.member_pk] == "holdout" for a in held)
    assert cp.selected == 200 - len(held)
    assert cp.matched == cp.selected + sum(cp.excluded.values())


def test_holdout_actions_do_not_spend_budget_or_run_slots() -> None:
    c = campaign("c", holdout_percent=50, holdout_salt="s", reward=CREDIT, max_per_run=3)
    pks = list(range(1, 41))
    cp = plan_one(night([c], {"c": pks}), budgets=FixedBudgets({"c": 1500}))
    ordered = sorted(pks, key=lambda pk: f"m{pk:03d}")
    held = {pk for pk in ordered if is_held_out("s", "c", f"m{pk:03d}", 50)}
    # Everyone in the control group is recorded, even after the budget ran out.
    assert {a.member_pk for a in cp.actions if a.holdout} == held
    assert selected(cp) == [pk for pk in ordered if pk not in held][:3]
    assert cp.excluded["budget"] == 40 - len(held) - 3
    assert cp.excluded["max_per_run"] == 0


def test_budget_is_read_once_and_spent_per_action() -> None:
    c = campaign("c", reward=CREDIT)
    cp = plan_one(night([c], {"c": [1, 2, 3, 4]}), budgets=FixedBudgets({"c": 1499}))
    assert selected(cp) == [1, 2]
    assert cp.outcomes == {1: "selected", 2: "selected", 3: "budget", 4: "budget"}


def test_no_budget_or_no_cost_is_unlimited() -> None:
    cp = plan_one(night([campaign("c", reward=CREDIT)], {"c": [1, 2]}))
    assert cp.selected == 2
    free = Reward("vip_invite", None, programme="inner-circle")
    cp = plan_one(
        night([campaign("c", reward=free)], {"c": [1, 2]}), budgets=FixedBudgets({"c": 0})
    )
    assert cp.selected == 2


class _CountingBudgets:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def remaining(self, campaign_id: str) -> int | None:
        self.calls.append(campaign_id)
        return 10_000


def test_budgets_are_asked_once_per_campaign_with_a_cost() -> None:
    budgets = _CountingBudgets()
    campaigns = [campaign("paid", reward=CREDIT), campaign("free")]
    plan_night(night(campaigns, {"paid": [1, 2, 3], "free": [4, 5]}), NO_CAPS, budgets)
    assert budgets.calls == ["paid"]


def test_max_per_run_limits_selections_in_member_id_order() -> None:
    c = campaign("c", max_per_run=2)
    cp = plan_one(night([c], {"c": [4, 3, 2, 1]}))
    assert selected(cp) == [1, 2]
    assert cp.outcomes == {1: "selected", 2: "selected", 3: "max_per_run", 4: "max_per_run"}
    assert counts(cp) == {"max_per_run": 2}


def test_max_per_run_counts_actions_already_stored_tonight() -> None:
    c = campaign("c", max_per_run=3)
    prior = {"c": {1: _prior(("once", AS_OF)), 9: _prior(("once", AS_OF))}}
    # Member 9 is no longer a candidate, but tonight's action still used a slot.
    cp = plan_one(night([c], {"c": [1, 2, 3]}, prior=prior))
    assert cp.outcomes == {1: "already_received", 2: "selected", 3: "max_per_run"}


def test_max_per_run_does_not_count_stored_held_out_actions() -> None:
    c = campaign("c", max_per_run=1, holdout_percent=50, holdout_salt="s")
    held = next(pk for pk in range(1, 100) if is_held_out("s", "c", f"m{pk:03d}", 50))
    free = [pk for pk in range(1, 100) if not is_held_out("s", "c", f"m{pk:03d}", 50)][:1]
    cp = plan_one(night([c], {"c": [held, *free]}, prior={"c": {held: _prior(("once", AS_OF))}}))
    assert cp.outcomes == {held: "already_received", free[0]: "selected"}


def test_every_candidate_gets_the_first_reason_in_guard_order() -> None:
    """One member per guard, each also failing every later guard."""
    d = AS_OF - timedelta(days=1)
    capped = (d, d)
    states = [
        state(1, consent=False, fatigued=True, taken_by="other", sends_on=capped),
        state(2, fatigued=True, taken_by="other", sends_on=capped),
        state(3, taken_by="other", sends_on=capped),
        state(4, taken_by="other", sends_on=capped),
        state(5, sends_on=capped),
    ]
    prior = {"c": {pk: _prior(("once", d)) for pk in (1, 2, 3)}}
    cp = plan_one(night([campaign("c")], {"c": [1, 2, 3, 4, 5, 6]}, states, prior), CAPS)
    assert cp.outcomes == {
        1: "consent",
        2: "fatigued",
        3: "already_received",
        4: "lower_priority",
        5: "frequency_cap",
        6: "selected",
    }
    assert cp.matched == 6 == cp.selected + sum(cp.excluded.values())


def test_holdout_before_budget_before_max_per_run() -> None:
    c = campaign("c", reward=CREDIT, max_per_run=1, holdout_percent=50, holdout_salt="s")
    ids = {pk: f"m{pk:03d}" for pk in range(1, 60)}
    free = [pk for pk in ids if not is_held_out("s", "c", ids[pk], 50)]
    held = [pk for pk in ids if is_held_out("s", "c", ids[pk], 50)]
    # Budget for one: the second free member hits the budget before max_per_run.
    cp = plan_one(night([c], {"c": list(ids)}), budgets=FixedBudgets({"c": 500}))
    assert cp.outcomes[free[0]] == "selected"
    assert {cp.outcomes[pk] for pk in free[1:]} == {"budget"}
    assert {cp.outcomes[pk] for pk in held} == {"holdout"}
    # With money to spare, max_per_run is what stops them.
    cp = plan_one(night([c], {"c": list(ids)}), budgets=FixedBudgets({"c": 10**6}))
    assert {cp.outcomes[pk] for pk in free[1:]} == {"max_per_run"}


def test_duplicate_candidates_count_once() -> None:
    cp = plan_one(night([campaign("c")], {"c": [1, 1, 2]}))
    assert cp.matched == 2
    assert selected(cp) == [1, 2]


def test_large_audience_is_ordered_by_member_id_too() -> None:
    # Past the size where the planner filters a night-wide order instead of sorting.
    pks = list(range(500, 0, -1))
    states = [replace(state(pk), member_id=f"x{(pk * 7919) % 1000:04d}") for pk in pks]
    members = {pk: s for pk, s in zip(pks, states, strict=True)}
    cp = plan_one(NightInput(AS_OF, [campaign("c")], members, {"c": pks}, {}))
    assert [a.member_id for a in cp.actions] == sorted(s.member_id for s in states)


def test_replanning_a_stored_night_adds_no_action_ids() -> None:
    high = campaign(
        "high", priority=9, max_per_run=2, reward=CREDIT, holdout_percent=20, holdout_salt="s"
    )
    low = campaign("low", once_per_member=False, cooldown_days=7)
    candidates = {"high": list(range(1, 21)), "low": list(range(5, 31))}
    budgets = FixedBudgets({"high": 10_000})
    first = plan_night(night([high, low], candidates), CAPS, budgets)
    stored = [a for cp in first.campaigns for a in cp.actions]
    prior: dict[str, dict[int, list[PriorAction]]] = {}
    for a in stored:
        prior.setdefault(a.campaign_id, {}).setdefault(a.member_pk, []).append(
            PriorAction(a.occurrence, AS_OF)
        )
    taken = {a.member_pk: a.campaign_id for a in stored}
    sends = {a.member_pk: (AS_OF,) for a in stored if not a.holdout}
    states = [state(pk, taken_by=taken.get(pk), sends_on=sends.get(pk, ())) for pk in range(1, 31)]
    spent = sum(a.cost_minor for a in stored if a.campaign_id == "high")
    again = plan_night(
        night([high, low], candidates, states, prior), CAPS, FixedBudgets({"high": 10_000 - spent})
    )
    assert {a.action_id for cp in again.campaigns for a in cp.actions} <= {
        a.action_id for a in stored
    }
    assert all(cp.actions == [] for cp in again.campaigns)
