"""The nightly planner: pure, no I/O, no clock, no settings.

The store selects each campaign's candidates in SQL and gathers the guard facts for them
(``NightInput``); ``plan_night`` applies the guards in the order of ``EXCLUSION_REASONS`` and
returns the ``Plan``. Each candidate gets exactly one outcome: ``selected``, ``holdout`` or
the first exclusion reason that applies, so ``matched == selected + sum(excluded)``. The
facts behind an exclusion that the ``NightInput`` does not hold are kept in the plan, once
(``Plan.exclusion`` puts them together): which earlier actions count, the full frequency
caps, what the budget had left.

It has to keep up with a million members times twenty campaigns, so it is written in two
phases per campaign:

* The guards that do not depend on what this campaign has already done tonight (season,
  consent, fatigue, already received, the referral guards, lower priority, frequency caps)
  are set operations, which run in C (the referral guards look at the few advocates of a
  referral campaign one by one: ``domain.referrals``). They can be: within one campaign the
  "taken tonight" set only grows by this campaign's own candidates, each of whom is looked
  at once.
* The order-dependent guards (holdout, budget, max per run) walk the survivors in
  ``member_id`` order; once the budget or ``max_per_run`` is spent, everyone after is
  excluded in bulk, except that the holdout hash still has to run for them (the control
  group is drawn whatever the budget).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta

from domain.campaign import Campaign, Policy, Variant
from domain.keys import SEP, action_id, occurrence_for
from domain.plan import (
    Budgets,
    CampaignPlan,
    MemberState,
    NightInput,
    Plan,
    PlannedAction,
    PriorAction,
)
from domain.referrals import REFUSALS, UNCONVERTED, VELOCITY, gravest, over_limit, verdicts

_HOLDOUT_BUCKETS = 10_000  # percent * 100 buckets: holdout percents have two decimals of play


def _holdout_test(salt: str, campaign_id: str, percent: float) -> Callable[[str], bool]:
    """``member_id → held out?`` for one campaign; the salted prefix is hashed once."""
    prefix = hashlib.sha256(SEP.join((salt, campaign_id, "")).encode())
    threshold = percent * (_HOLDOUT_BUCKETS / 100)

    def held_out(member_id: str) -> bool:
        h = prefix.copy()
        h.update(member_id.encode())
        return int.from_bytes(h.digest()[:8], "big") % _HOLDOUT_BUCKETS < threshold

    return held_out


def is_held_out(salt: str, campaign_id: str, member_id: str, percent: float) -> bool:
    """Whether the member is in the campaign's control group.

    A sha256 bucket in ``0..9999`` of (salt, campaign, member) compared with ``percent*100``:
    it depends on nothing about the night, so a member stays in (or out of) the control
    group for as long as the salt is kept; changing the salt redraws the group.
    """
    if percent <= 0:
        return False
    return _holdout_test(salt, campaign_id, percent)(member_id)


def _variant_picker(campaign: Campaign) -> Callable[[str], Variant] | None:
    """``member_id → variant`` for a campaign with variants (``None`` without).

    A sha256 of ("variant", salt, campaign, member) read as a number in [0, 1) picks the
    variant whose slice of the weights it falls in. The salt is the holdout's (the campaign
    id without a holdout), so, like the control group, a member keeps their variant for as
    long as the salt and the variants are kept, whatever the night; the hash is not the
    holdout's, so the variants split the treated members in the weights' proportions.
    """
    variants = campaign.variants
    if not variants:
        return None
    total = sum(v.weight for v in variants)
    bounds: list[tuple[float, Variant]] = []
    running = 0.0
    for v in variants:
        running += v.weight / total
        bounds.append((running, v))
    prefix = hashlib.sha256(
        SEP.join(("variant", campaign.holdout_salt or campaign.id, campaign.id, "")).encode()
    )

    def pick(member_id: str) -> Variant:
        h = prefix.copy()
        h.update(member_id.encode())
        x = int.from_bytes(h.digest()[:8], "big") / 2**64
        return next((v for bound, v in bounds if x < bound), variants[-1])

    return pick


def variant_for(campaign: Campaign, member_id: str) -> Variant | None:
    """The variant the member gets from the campaign (``None``: it has no variants)."""
    pick = _variant_picker(campaign)
    return pick(member_id) if pick is not None else None


class FixedBudgets:
    """A ``Budgets`` backed by a dict of minor units left per campaign (tests, dry runs).

    Campaigns not in the dict have no budget (``remaining`` is ``None``).
    """

    def __init__(self, remaining: Mapping[str, int] | None = None) -> None:
        self._remaining = dict(remaining or {})

    def remaining(self, campaign_id: str) -> int | None:
        return self._remaining.get(campaign_id)

    def __repr__(self) -> str:
        return f"FixedBudgets({self._remaining!r})"


Cap = tuple[int, int]  # a full frequency cap: (nudges counted in its window, window in days)


def _over_cap_test(as_of: date, policy: Policy) -> Callable[[Sequence[date]], Cap | None] | None:
    """``sends_on → the first cap one more nudge tonight would break`` (``None``: no cap
    would break), or ``None`` without caps.

    A nudge on ``d`` counts in a cap of ``per_days`` when ``(as_of - d).days < per_days``,
    i.e. ``d >= as_of - per_days + 1``; the window starts are computed once per night.
    """
    windows = tuple(
        (as_of - timedelta(days=cap.per_days - 1), cap.max, cap.per_days)
        for cap in policy.frequency_caps
    )
    if not windows:
        return None
    # A member with fewer counted nudges than the smallest max cannot break any cap: this
    # skips the per-date work for almost everyone.
    smallest = min(m for _, m, _ in windows)

    def over(sends_on: Sequence[date]) -> Cap | None:
        if len(sends_on) < smallest:
            return None
        # Tonight's nudge is the +1: over when a window already holds `most` nudges.
        for start, most, per_days in windows:
            count = sum(1 for d in sends_on if d >= start)
            if count >= most:
                return count, per_days
        return None

    return over


def _every_action(_: PriorAction) -> bool:
    return True


def _counts_as_received(campaign: Campaign, as_of: date) -> Callable[[PriorAction], bool]:
    """``earlier action → does it make tonight's nudge already received?`` for the
    campaign's kind of occurrence."""
    kind = campaign.occurrence_kind
    if kind == "once":
        return _every_action
    if kind == "date" and campaign.cooldown_days is not None:
        # Fewer than cooldown_days before as_of, i.e. on or after this date (tonight counts).
        since = as_of - timedelta(days=campaign.cooldown_days - 1)
        return lambda p: p.as_of >= since
    occurrence = occurrence_for(campaign, as_of)
    return lambda p: p.occurrence == occurrence


def _received_test(
    counts: Callable[[PriorAction], bool],
) -> Callable[[Sequence[PriorAction]], bool]:
    """``a member's earlier actions → already received?``"""
    if counts is _every_action:
        return bool  # any earlier action will do, and the lists are never empty
    return lambda prior: any(map(counts, prior))


class _Night:
    """Per-night facts shared by all campaigns, computed once from the members."""

    def __init__(self, night: NightInput, policy: Policy) -> None:
        members = night.members
        over_cap = _over_cap_test(night.as_of, policy)
        self.no_consent: set[int] = set()  # email consent withdrawn, or paused
        # category → the members who left it in the preference centre (few)
        self.left: dict[str, set[int]] = {}
        self.fatigued: set[int] = set()
        # Taken tonight: a stored nudge of any campaign (held-out actions do not take the
        # member); grows as campaigns select.
        self.taken: set[int] = set()
        # Frequency caps count stored nudges only: a nudge selected earlier in this run makes
        # the member `taken`, and lower_priority is checked first, so by the time a member
        # reaches the cap guard this run has selected nothing for them.
        self.capped: dict[int, Cap] = {}
        for pk, state in members.items():
            if not state.consent or state.paused_until is not None:
                self.no_consent.add(pk)
            elif state.fatigued:
                self.fatigued.add(pk)
            if state.categories_out:
                for category, _ in state.categories_out:
                    self.left.setdefault(category, set()).add(pk)
            if state.taken_by is not None:
                self.taken.add(pk)
            if over_cap is not None:
                cap = over_cap(state.sends_on)
                if cap is not None:
                    self.capped[pk] = cap
        self._members = members
        self._order: list[int] | None = None
        self.public_domains = policy.public_email_domains

    def in_member_id_order(self, pks: set[int]) -> list[int]:
        """``pks`` sorted by member id.

        A few are sorted directly. Many (a large audience) are picked out of the whole night
        sorted once: a linear filter beats sorting a million strings again per campaign.
        """
        members = self._members
        if len(pks) * 8 < len(members):
            return sorted(pks, key=lambda pk: members[pk].member_id)
        if self._order is None:
            ids = {pk: state.member_id for pk, state in members.items()}
            self._order = sorted(ids, key=ids.__getitem__)
        return [pk for pk in self._order if pk in pks]


def plan_night(night: NightInput, policy: Policy, budgets: Budgets) -> Plan:
    """Plan one business night: every enabled campaign, by priority (high first), then id."""
    campaigns = sorted((c for c in night.campaigns if c.enabled), key=lambda c: (-c.priority, c.id))
    shared = _Night(night, policy)
    planned = [_plan_campaign(c, night, shared, budgets) for c in campaigns]
    return Plan(night.as_of, planned, shared.capped, policy.public_email_domains)


def _plan_campaign(
    campaign: Campaign, night: NightInput, shared: _Night, budgets: Budgets
) -> CampaignPlan:
    result = CampaignPlan(campaign)
    excluded, outcomes = result.excluded, result.outcomes
    members = night.members
    # Duplicate pks would be one member counted twice; the set makes each count once.
    rest = set(night.candidates.get(campaign.id, ()))
    result.matched = len(rest)
    unknown = rest - members.keys()
    if unknown:
        raise ValueError(
            f"campaign {campaign.id}: candidates without a MemberState: {sorted(unknown)[:5]}"
        )

    def exclude(pks: set[int], reason: str) -> None:
        rest.difference_update(pks)
        excluded[reason] += len(pks)
        outcomes.update(dict.fromkeys(pks, reason))

    # Phase 1: guards that are facts about the member, in EXCLUSION_REASONS order.
    if not campaign.in_season(night.as_of):
        exclude(set(rest), "out_of_season")
    exclude(rest & shared.no_consent, "consent")
    if campaign.category is not None and campaign.category in shared.left:
        exclude(rest & shared.left[campaign.category], "consent")
    exclude(rest & shared.fatigued, "fatigued")
    prior = night.prior.get(campaign.id)
    if prior:
        counts = result.counts_as_received = _counts_as_received(campaign, night.as_of)
        received = _received_test(counts)
        exclude({pk for pk in rest.intersection(prior) if received(prior[pk])}, "already_received")
    if campaign.is_referral:
        for reason, pks in _referral_refusals(campaign, night, shared, rest).items():
            exclude(pks, reason)
    exclude(rest & shared.taken, "lower_priority")
    exclude(rest & shared.capped.keys(), "frequency_cap")

    # Phase 2: in member_id order, the guards whose answer depends on the ones before.
    as_of = night.as_of
    occurrence = occurrence_for(campaign, as_of)
    held_out = (
        _holdout_test(campaign.holdout_salt, campaign.id, campaign.holdout_percent)
        if campaign.holdout_percent > 0
        else None
    )
    reward = campaign.reward
    cost_money = reward.cost if reward is not None else None
    cost = cost_money.amount_minor if cost_money is not None else 0
    currency = cost_money.currency if cost_money is not None else None
    # The budget is read once per campaign per night and spent locally as actions are chosen.
    left = budgets.remaining(campaign.id) if cost_money is not None else None
    result.budget_left = left
    room = _room(campaign, night, held_out)
    pick = _variant_picker(campaign)
    cid, template, taken, actions = campaign.id, campaign.template, shared.taken, result.actions
    full: str | None = None  # once set, every later non-held-out candidate is excluded for it
    full_pks: list[int] = []
    for pk in shared.in_member_id_order(rest):
        member_id = members[pk].member_id
        if held_out is not None and held_out(member_id):
            actions.append(
                PlannedAction(
                    action_id(cid, member_id, occurrence),
                    cid,
                    pk,
                    member_id,
                    occurrence,
                    True,
                    reward,
                    template,
                    0,
                    None,
                )
            )
            outcomes[pk] = "holdout"
            excluded["holdout"] += 1
            # Not taken: for the rest of the night the member is treated as if this
            # campaign did not exist, so a lower-priority campaign may still nudge them.
            continue
        if full is None:
            if left is not None and left < cost:
                full = "budget"
            elif room is not None and room <= 0:
                full = "max_per_run"
        if full is not None:
            if held_out is None:
                # Nothing can change any more: exclude the rest without looking at them.
                break
            full_pks.append(pk)
            continue
        variant = pick(member_id) if pick is not None else None
        actions.append(
            PlannedAction(
                action_id(cid, member_id, occurrence),
                cid,
                pk,
                member_id,
                occurrence,
                False,
                reward,
                template if variant is None else variant.template,
                cost,
                currency,
                None if variant is None else variant.id,
            )
        )
        outcomes[pk] = "selected"
        taken.add(pk)
        if left is not None:
            left -= cost
        if room is not None:
            room -= 1
    if full is not None:
        # Everyone not yet given an outcome is past the point where the budget or the run
        # limit ran out (and, with a holdout, was not held out).
        leftover = full_pks if held_out is not None else [pk for pk in rest if pk not in outcomes]
        excluded[full] += len(leftover)
        outcomes.update(dict.fromkeys(leftover, full))
    return result


def _referral_refusals(
    campaign: Campaign, night: NightInput, shared: _Night, rest: set[int]
) -> dict[str, set[int]]:
    """The referral guards (``domain.referrals``): reason → the advocates it excludes.

    An advocate passes with at least one conversion that earns a reward and room left in
    the campaign's limit of rewarded referrals.
    """
    facts_of = night.referrals.get(campaign.id, {})
    refused: dict[str, set[int]] = {reason: set() for reason in (*REFUSALS, VELOCITY)}
    for pk in rest:
        facts = facts_of.get(pk)
        if facts is None:
            refused[UNCONVERTED].add(pk)
            continue
        passed, failed = verdicts(facts, shared.public_domains)
        if not passed:
            refused[gravest(failed)].add(pk)
        elif over_limit(facts, campaign.referral_limit, night.as_of) is not None:
            refused[VELOCITY].add(pk)
    return refused


def _room(
    campaign: Campaign, night: NightInput, held_out: Callable[[str], bool] | None
) -> int | None:
    """How many more members ``max_per_run`` lets the campaign select tonight.

    Actions stored for tonight by an earlier run of the same night count, so re-running a
    night cannot select a second batch. ``PriorAction`` does not say whether an action was
    held out, but the holdout draw is deterministic, so it is recomputed; an action for a
    member the night does not describe is counted as selected (the safe side).
    """
    limit = campaign.max_per_run
    if limit is None:
        return None
    as_of, members = night.as_of, night.members
    stored = 0
    for pk, prior in night.prior.get(campaign.id, {}).items():
        if any(p.as_of == as_of for p in prior):
            state: MemberState | None = members.get(pk)
            if state is None or held_out is None or not held_out(state.member_id):
                stored += 1
    return limit - stored
