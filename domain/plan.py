"""The nightly plan's values: what the planner is given and what it returns.

``planning.planner.plan_night`` is pure: the store selects candidates in SQL and gathers the
guard facts for them; the planner applies the guards in Python and returns a ``Plan``.
``Plan.exclusion`` gives the facts behind any exclusion, for ``nudgeflow why``, from what the
plan kept and the ``NightInput`` it was made from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from domain.campaign import Campaign, Reward
from domain.referrals import (
    EXISTING_CUSTOMER,
    REFUSALS,
    SELF_REFERRAL,
    UNCONVERTED,
    VELOCITY,
    Referrals,
    Verdict,
    rewarded_in_window,
    verdicts,
)
from nudgeflow.money import Money

# In the order the planner applies them.
EXCLUSION_REASONS = (
    "out_of_season",
    "consent",
    "fatigued",
    "already_received",
    SELF_REFERRAL,
    EXISTING_CUSTOMER,
    UNCONVERTED,
    VELOCITY,
    "lower_priority",
    "frequency_cap",
    "holdout",
    "budget",
    "max_per_run",
)


@dataclass(frozen=True, slots=True)
class MemberState:
    """Guard facts about one member who is a candidate of at least one campaign tonight."""

    member_id: str
    consent: bool  # False: unsubscribed, bounced, complained or opted out
    fatigued: bool  # an active fatigue tag
    # Business dates of the member's counted nudges (planned or sent; not held out, not
    # failed) inside the widest frequency-cap window, including any stored for tonight.
    sends_on: tuple[date, ...] = ()
    # The campaign of a nudge stored for the member tonight (held-out actions take no one).
    taken_by: str | None = None
    # No consent of a member who opted in: the first event that withdrew it (type, epoch s).
    withdrawal: tuple[str, int] | None = None
    # Fatigued: the last day of the rest (None: until further notice).
    resting_until: date | None = None
    # The preference centre: the categories the member left, with when (epoch s), and a
    # pause of every nudge that covers tonight: when it ends (epoch s). Both are no consent.
    categories_out: tuple[tuple[str, int], ...] = ()
    paused_until: int | None = None


@dataclass(frozen=True, slots=True)
class PriorAction:
    occurrence: str
    as_of: date


class Budgets(Protocol):
    """What the planner may spend. Until the ledger exists the store computes it from the
    campaign files and the stored actions."""

    def remaining(self, campaign_id: str) -> int | None:
        """Minor units left in the campaign's budget currency; ``None`` means no budget."""
        ...


@dataclass(frozen=True)
class NightInput:
    as_of: date
    campaigns: Sequence[Campaign]  # any order: the planner sorts by priority, then id
    members: Mapping[int, MemberState]  # member_pk → state, for every candidate
    candidates: Mapping[str, Sequence[int]]  # campaign id → member_pks matching audience+trigger
    prior: Mapping[str, Mapping[int, Sequence[PriorAction]]]  # campaign → member → earlier actions
    # Referral campaigns only: campaign → member_pk → the advocate's referral facts tonight
    # (``store.referral_facts``). A candidate without facts has no conversion that counts.
    referrals: Mapping[str, Mapping[int, Referrals]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PlannedAction:
    action_id: str
    campaign_id: str
    member_pk: int
    member_id: str
    occurrence: str
    holdout: bool
    reward: Reward | None
    template: str
    cost_minor: int  # 0 for held-out actions and rewards without a cost
    currency: str | None
    variant: str | None = None  # the A/B/n variant; None without variants and when held out

    def as_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "member_id": self.member_id,
            "occurrence": self.occurrence,
            "holdout": self.holdout,
            "reward": self.reward.as_dict() if self.reward else None,
            "email": self.template,
            "variant": self.variant,
        }


# --- the facts behind an exclusion ------------------------------------------------------


@dataclass(frozen=True)
class NoConsent:
    """``consent``: opted out of email (no ``withdrawal``), or withdrawn by an event; or,
    with email consent given, a preference: a pause of every nudge, or the campaign's
    category left."""

    withdrawal: tuple[str, int] | None  # the first such event: (type, epoch seconds)
    paused_until: int | None = None  # paused every nudge: when the pause ends (epoch s)
    category_out: tuple[str, int] | None = None  # the category left, and when (epoch s)


@dataclass(frozen=True)
class Resting:
    """``fatigued``: resting after unanswered nudges."""

    until: date | None  # the last day of the rest; None: until further notice


@dataclass(frozen=True)
class AlreadyReceived:
    """``already_received``: an earlier action of the campaign counts against tonight."""

    earlier: PriorAction  # the latest one that counts
    occurrence_kind: str  # once | year | date
    cooldown_days: int | None


@dataclass(frozen=True)
class TakenTonight:
    """``lower_priority``: another campaign has the member tonight."""

    campaign_id: str
    priority: int | None  # a campaign of this plan; None: an action an earlier run stored


@dataclass(frozen=True)
class OverCap:
    """``frequency_cap``: one more nudge would break the first cap that is full."""

    nudges: int  # counted nudges inside the cap's window
    per_days: int


@dataclass(frozen=True)
class BudgetSpent:
    """``budget``: what was left before tonight no longer covers one more reward."""

    left: Money
    cost: Money | None
    selected: int  # selected by the campaign tonight


@dataclass(frozen=True)
class RunLimit:
    """``max_per_run``: the campaign selected as many members as a night allows."""

    limit: int | None


@dataclass(frozen=True)
class OutOfSeason:
    """``out_of_season``: tonight is outside the campaign's ``starts_on``..``ends_on``."""

    starts_on: date | None
    ends_on: date | None


@dataclass(frozen=True)
class ReferralRefused:
    """``self_referral``, ``referral_existing_customer``, ``referral_unconverted``: no
    conversion of tonight earns the advocate a reward; why, for each one."""

    refused: tuple[Verdict, ...]  # oldest first; empty: no conversion was found at all


@dataclass(frozen=True)
class ReferralLimit:
    """``referral_velocity``: the advocate's rewarded referrals fill the campaign's limit."""

    rewarded: int  # rewards counted in the window
    max: int
    per_days: int


Exclusion = (
    NoConsent
    | Resting
    | AlreadyReceived
    | TakenTonight
    | OverCap
    | BudgetSpent
    | RunLimit
    | OutOfSeason
    | ReferralRefused
    | ReferralLimit
)


@dataclass
class CampaignPlan:
    campaign: Campaign
    matched: int = 0
    actions: list[PlannedAction] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EXCLUSION_REASONS, 0))
    # member_pk → "selected", "holdout" or the exclusion reason; ``Plan.exclusion`` adds the
    # facts behind a reason from the night's input and what the planner kept (here and in
    # ``Plan``).
    outcomes: dict[int, str] = field(default_factory=dict)
    # already_received: the planner's test of which earlier actions count.
    counts_as_received: Callable[[PriorAction], bool] | None = None
    # What was left of the budget before tonight (None: no budget, or no cost).
    budget_left: int | None = None

    @property
    def selected(self) -> int:
        return sum(1 for a in self.actions if not a.holdout)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.campaign.id,
            "priority": self.campaign.priority,
            "matched": self.matched,
            "selected": self.selected,
            "excluded": dict(self.excluded),
            "actions": [a.as_dict() for a in self.actions],
        }


@dataclass
class Plan:
    as_of: date
    campaigns: list[CampaignPlan]
    # The members a frequency cap holds back: (nudges counted, the cap's window in days).
    over_cap: Mapping[int, tuple[int, int]] = field(default_factory=dict)
    # The policy's public email domains the referral guards used (for ``exclusion``).
    public_email_domains: frozenset[str] = frozenset()

    def as_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "campaigns": [c.as_dict() for c in self.campaigns]}

    def exclusion(
        self, night: NightInput, campaign_plan: CampaignPlan, member_pk: int
    ) -> Exclusion:
        """The facts behind the member's exclusion from ``campaign_plan``'s campaign, given
        the ``night`` this plan was made from (it holds the members' facts; the plan does
        not keep them, so the nightly run can let them go).

        Raises ``KeyError`` when the member was not a candidate, and ``ValueError`` when
        they were selected or held out.
        """
        reason = campaign_plan.outcomes[member_pk]
        campaign = campaign_plan.campaign
        state = night.members[member_pk]
        if reason == "out_of_season":
            return OutOfSeason(campaign.starts_on, campaign.ends_on)
        if reason in REFUSALS:
            facts = night.referrals.get(campaign.id, {}).get(member_pk)
            if facts is None:
                return ReferralRefused(())
            return ReferralRefused(tuple(verdicts(facts, self.public_email_domains)[1]))
        if reason == VELOCITY:
            limit = campaign.referral_limit
            facts = night.referrals[campaign.id][member_pk]
            assert limit is not None
            count = rewarded_in_window(facts.rewarded_on, night.as_of, limit.per_days)
            return ReferralLimit(count, limit.max, limit.per_days)
        if reason == "consent":
            if not state.consent:
                return NoConsent(state.withdrawal)
            if state.paused_until is not None:
                return NoConsent(None, paused_until=state.paused_until)
            category = campaign.category
            since = dict(state.categories_out)
            assert category is not None and category in since
            return NoConsent(None, category_out=(category, since[category]))
        if reason == "fatigued":
            return Resting(state.resting_until)
        if reason == "already_received":
            counts = campaign_plan.counts_as_received
            assert counts is not None
            counted = (p for p in night.prior[campaign.id][member_pk] if counts(p))
            earlier = max(counted, key=lambda p: p.as_of)  # the latest
            return AlreadyReceived(earlier, campaign.occurrence_kind, campaign.cooldown_days)
        if reason == "lower_priority":
            if state.taken_by is not None:
                return TakenTonight(state.taken_by, None)
            # Only one campaign of a plan can take a member: every later one finds them taken.
            taker = next(
                c.campaign for c in self.campaigns if c.outcomes.get(member_pk) == "selected"
            )
            return TakenTonight(taker.id, taker.priority)
        if reason == "frequency_cap":
            return OverCap(*self.over_cap[member_pk])
        if reason == "budget":
            cost = campaign.reward.cost if campaign.reward is not None else None
            currency = campaign.budget.currency if campaign.budget is not None else None
            currency = currency or (cost.currency if cost is not None else "")
            left = Money(campaign_plan.budget_left or 0, currency)
            return BudgetSpent(left, cost, campaign_plan.selected)
        if reason == "max_per_run":
            return RunLimit(campaign.max_per_run)
        raise ValueError(f"{reason!r} is not an exclusion")
