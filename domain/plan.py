"""The nightly plan's values: what the planner is given and what it returns.

``planning.planner.plan_night`` is pure: the store selects candidates in SQL and gathers the
guard facts for them; the planner applies the guards in Python and returns a ``Plan``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from domain.campaign import Campaign, Reward

# In the order the planner applies them.
EXCLUSION_REASONS = (
    "consent",
    "fatigued",
    "already_received",
    "lower_priority",
    "frequency_cap",
    "holdout",
    "budget",
    "max_per_run",
)


@dataclass(frozen=True)
class MemberState:
    """Guard facts about one member who is a candidate of at least one campaign tonight."""

    member_id: str
    consent: bool  # False: unsubscribed, bounced, complained or opted out
    fatigued: bool  # an active fatigue tag
    # Business dates of the member's counted nudges (planned or sent; not held out, not
    # failed) inside the widest frequency-cap window, including any stored for tonight.
    sends_on: tuple[date, ...] = ()
    # A stored action of any campaign (held out included) exists for the member tonight.
    taken_tonight: bool = False


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "member_id": self.member_id,
            "occurrence": self.occurrence,
            "holdout": self.holdout,
            "reward": self.reward.as_dict() if self.reward else None,
            "email": self.template,
        }


@dataclass
class CampaignPlan:
    campaign: Campaign
    matched: int = 0
    actions: list[PlannedAction] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EXCLUSION_REASONS, 0))
    # member_pk → "selected", "holdout" or the exclusion reason (for `nudgeflow why`)
    outcomes: dict[int, str] = field(default_factory=dict)

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

    def as_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of.isoformat(), "campaigns": [c.as_dict() for c in self.campaigns]}
