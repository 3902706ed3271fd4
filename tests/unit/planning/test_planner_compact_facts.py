"""The planner gives the same plan whether the facts hold one object per member or share equal
values: ``store.guard_facts`` now hands it each distinct earlier action (and each distinct
list of nudge dates) once, as tuples shared between members, to keep a million members'
facts under 1 GiB. Over the nights of random scenarios, the plan made from those compact
facts is the plan made from the per-member lists the store used to build."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from typing import Any

from hypothesis import given, settings

from domain.plan import NightInput, Plan, PriorAction
from planning.planner import plan_night
from tests.unit.planning.test_planner_properties import Scenario, budgets, scenarios, simulate


def compact(night: NightInput) -> NightInput:
    """``night`` as ``gather_guards`` builds it now: equal values shared, tuples not lists."""
    actions: dict[PriorAction, PriorAction] = {}
    lists: dict[tuple[PriorAction, ...], tuple[PriorAction, ...]] = {}
    dates: dict[tuple[date, ...], tuple[date, ...]] = {}

    def shared(prior: Sequence[PriorAction]) -> tuple[PriorAction, ...]:
        items = tuple(actions.setdefault(p, PriorAction(p.occurrence, p.as_of)) for p in prior)
        return lists.setdefault(items, items)

    members = {
        pk: replace(state, sends_on=dates.setdefault(tuple(state.sends_on), tuple(state.sends_on)))
        for pk, state in night.members.items()
    }
    prior = {
        cid: {pk: shared(items) for pk, items in by_member.items()}
        for cid, by_member in night.prior.items()
    }
    candidates = {cid: list(pks) for cid, pks in night.candidates.items()}
    return NightInput(night.as_of, night.campaigns, members, candidates, prior)


def outcome(plan: Plan) -> list[Any]:
    return [
        (
            cp.campaign.id,
            cp.matched,
            dict(cp.excluded),
            dict(cp.outcomes),
            cp.actions,
            cp.budget_left,
        )
        for cp in plan.campaigns
    ] + [dict(plan.over_cap)]


@settings(max_examples=15, deadline=None)
@given(scenarios())
def test_compact_facts_plan_the_same_nights(scenario: Scenario) -> None:
    world = simulate(scenario, nights=20)
    assert world.inputs
    for night, plan in zip(world.inputs, world.plans, strict=True):
        # The budgets at the end of the simulation are not the night's: re-plan both ways.
        spent = budgets(world)
        assert outcome(plan_night(compact(night), scenario.policy, spent)) == outcome(
            plan_night(night, scenario.policy, spent)
        )
        assert plan.as_of == night.as_of
