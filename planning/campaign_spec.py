"""The shapes of ``campaigns/<id>.yaml`` and ``campaigns/policy.yaml`` (pydantic, strict).

These mirror the YAML; ``planning.campaign`` compiles them into the values the planner uses.
The JSON Schema that editors autocomplete from is generated from these classes.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from audience.fields import STRICT, Days, MoneyField, OneOrMany, at_key
from audience.rules import RuleSpec

Identifier = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$", min_length=1, max_length=64)
]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class WithinSpec(BaseModel):
    model_config = STRICT
    within: Days


class SegmentsSpec(BaseModel):
    model_config = STRICT
    segment: OneOrMany = Field(min_length=1)


class ScoreRangeSpec(BaseModel):
    model_config = STRICT
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> ScoreRangeSpec:
        if self.min is None and self.max is None:
            raise ValueError("give at least one of min or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class AudienceSpec(RuleSpec):
    """Who a campaign is for: the rule language plus what the nightly profile knows."""

    stage: OneOrMany | None = None
    entered_stage: WithinSpec | None = None
    last_purchase: WithinSpec | None = None
    rfm: SegmentsSpec | None = None
    score: ScoreRangeSpec | None = None
    country: OneOrMany | None = None
    timezone: OneOrMany | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> AudienceSpec:
        if not self.model_fields_set:
            raise ValueError("an audience needs at least one criterion (e.g. stage: adopter)")
        return self


TriggerKind = Literal["schedule", "stage_entry", "event", "anniversary", "birthday", "inactivity"]


class TriggerSpec(BaseModel):
    """When a matching member is nudged."""

    model_config = STRICT
    on: TriggerKind
    types: OneOrMany | None = None  # event, inactivity
    of: Literal["joined_at", "first_purchase"] | None = None  # anniversary
    years: int | None = Field(default=None, ge=1, le=100)  # anniversary: at least this many
    for_: Days | None = Field(default=None, alias="for")  # inactivity

    @model_validator(mode="after")
    def _keys_fit_kind(self) -> TriggerSpec:
        allowed = {
            "schedule": set(),
            "stage_entry": set(),
            "birthday": set(),
            "event": {"types"},
            "anniversary": {"of", "years"},
            "inactivity": {"types", "for_"},
        }[self.on]
        extra = sorted((self.model_fields_set - {"on"}) - allowed)
        if extra:
            name = "for" if extra[0] == "for_" else extra[0]
            raise ValueError(at_key(name, f"{name} does not apply to 'on: {self.on}'"))
        if self.on == "event" and not self.types:
            raise ValueError("an event trigger needs types: [...]")
        if self.on == "inactivity" and self.for_ is None:
            raise ValueError("an inactivity trigger needs for: (e.g. 90d)")
        return self


class HoldoutSpec(BaseModel):
    model_config = STRICT
    percent: float = Field(gt=0, lt=100)
    salt: str = Field(min_length=1)


class EligibilitySpec(BaseModel):
    model_config = STRICT
    once_per_member: bool = False
    cooldown: Days | None = None
    holdout: HoldoutSpec | None = None
    max_per_run: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _once_or_cooldown(self) -> EligibilitySpec:
        if self.once_per_member and self.cooldown is not None:
            raise ValueError("give once_per_member or cooldown, not both")
        return self


RewardKind = Literal["discount", "credit", "gift", "vip_invite"]
_REWARD_KEYS: dict[str, set[str]] = {
    "discount": {"percent_off", "amount_off", "expires_in", "cost_estimate"},
    "credit": {"amount", "expires_in"},
    "gift": {"item", "item_cost"},
    "vip_invite": {"programme", "programme_cost", "expires_in"},
}


class RewardSpec(BaseModel):
    """What the member gets. Which keys apply depends on ``kind``."""

    model_config = STRICT
    kind: RewardKind
    percent_off: float | None = Field(default=None, gt=0, le=100)
    amount_off: MoneyField | None = None
    amount: MoneyField | None = None
    cost_estimate: MoneyField | None = None
    item: str | None = None
    item_cost: MoneyField | None = None
    programme: str | None = None
    programme_cost: MoneyField | None = None
    expires_in: Days | None = None

    @model_validator(mode="after")
    def _keys_fit_kind(self) -> RewardSpec:
        given = self.model_fields_set - {"kind"}
        unfit = sorted(given - _REWARD_KEYS[self.kind])
        if unfit:
            takes = ", ".join(sorted(_REWARD_KEYS[self.kind]))
            raise ValueError(
                at_key(unfit[0], f"{unfit[0]} does not apply to a {self.kind} reward ({takes})")
            )
        if self.kind == "discount" and (self.percent_off is None) == (self.amount_off is None):
            raise ValueError("a discount needs exactly one of percent_off or amount_off")
        if self.kind == "credit" and self.amount is None:
            raise ValueError('a credit needs amount (e.g. "25.00 USD")')
        if self.kind == "gift" and (self.item is None or self.item_cost is None):
            raise ValueError("a gift needs item and item_cost")
        if self.kind == "vip_invite" and self.programme is None:
            raise ValueError("a vip_invite needs programme")
        for money in (self.amount_off, self.amount, self.item_cost):
            if money is not None and money.amount_minor <= 0:
                raise ValueError("reward amounts must be positive")
        return self


class BudgetSpec(BaseModel):
    model_config = STRICT
    total: MoneyField | None = None
    per_month: MoneyField | None = None

    @model_validator(mode="after")
    def _one_currency(self) -> BudgetSpec:
        if self.total is None and self.per_month is None:
            raise ValueError("give total, per_month or both")
        if self.total and self.per_month and self.total.currency != self.per_month.currency:
            raise ValueError("total and per_month must be in the same currency")
        return self


class EmailSpec(BaseModel):
    model_config = STRICT
    template: Identifier  # templates/email/<template>.html.j2 and .txt.j2
    subject: str = Field(min_length=1, max_length=200)


class ResponseSpec(BaseModel):
    model_config = STRICT
    counts_as: OneOrMany = Field(min_length=1)
    within: Days


class CampaignSpec(BaseModel):
    """One campaign file."""

    model_config = STRICT
    id: Identifier
    name: str = Field(min_length=1)
    owner: str | None = None
    description: str | None = None
    enabled: bool = True
    priority: int = Field(default=0, ge=0, le=1000)
    audience: AudienceSpec
    trigger: TriggerSpec
    eligibility: EligibilitySpec = EligibilitySpec()
    reward: RewardSpec | None = None
    budget: BudgetSpec | None = None
    email: EmailSpec
    response: ResponseSpec = ResponseSpec.model_validate(
        {"counts_as": ["email_clicked"], "within": "7d"}
    )

    @model_validator(mode="after")
    def _consistent(self) -> CampaignSpec:
        if self.trigger.on == "stage_entry" and self.audience.stage is None:
            raise ValueError(at_key("trigger", "a stage_entry trigger needs audience.stage"))
        if self.trigger.on in ("schedule", "inactivity") and not (
            self.eligibility.once_per_member or self.eligibility.cooldown
        ):
            raise ValueError(
                f"a {self.trigger.on} campaign needs eligibility.once_per_member or "
                "eligibility.cooldown, or it would nudge the same members every night"
            )
        if self.budget is not None:
            if self.reward is None:
                raise ValueError("a budget needs a reward to spend it on")
            reward = self.reward
            if reward.kind == "discount" and reward.percent_off and not reward.cost_estimate:
                raise ValueError(
                    at_key(
                        "budget",
                        "a budget on a percent discount needs reward.cost_estimate "
                        "(what finance reserves per reward)",
                    )
                )
            cost = reward_cost(reward)
            budget_currency = (self.budget.total or self.budget.per_month).currency  # type: ignore[union-attr]
            if cost is not None and cost.currency != budget_currency:
                raise ValueError(
                    f"the budget is in {budget_currency} but the reward costs {cost.currency}"
                )
        return self


def reward_cost(reward: RewardSpec) -> MoneyField | None:
    """What one reward is counted as costing when it is reserved."""
    if reward.kind == "discount":
        return reward.cost_estimate or reward.amount_off
    if reward.kind == "credit":
        return reward.amount
    if reward.kind == "gift":
        return reward.item_cost
    return reward.programme_cost


class CapSpec(BaseModel):
    model_config = STRICT
    max: int = Field(ge=1)
    per: Days


class FatigueSpec(BaseModel):
    model_config = STRICT
    unanswered_nudges: int = Field(default=3, ge=1, le=100)
    tag: Identifier = "nudge-fatigued"
    rest_for: Days = 90
    recover_on: Literal["any_response"] = "any_response"


class SendWindowSpec(BaseModel):
    model_config = STRICT
    start: str = "09:00"
    end: str = "18:00"
    timezone: Literal["member", "business"] = "member"

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"expected a time of day such as 09:00, got {value!r}")
        return value

    @model_validator(mode="after")
    def _order(self) -> SendWindowSpec:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class PolicySpec(BaseModel):
    """``campaigns/policy.yaml``: guards that apply to every campaign."""

    model_config = STRICT
    frequency_caps: list[CapSpec] = []
    fatigue: FatigueSpec = FatigueSpec()
    send_window: SendWindowSpec = SendWindowSpec()
