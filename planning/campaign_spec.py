"""The shapes of ``campaigns/<id>.yaml`` and ``campaigns/policy.yaml`` (pydantic, strict).

These mirror the YAML; ``planning.campaign`` compiles them into the values the planner uses.
The JSON Schema that editors autocomplete from is generated from these classes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from audience.fields import MAX_COUNT, STRICT, Days, MoneyField, OneOrMany, PositiveMoney
from audience.filespec import Broken, FileSpec
from audience.rules import RuleSpec

Identifier = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$", min_length=1, max_length=64)
]
_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class WithinSpec(FileSpec):
    model_config = STRICT
    within: Days


class SegmentsSpec(FileSpec):
    model_config = STRICT
    segment: OneOrMany = Field(min_length=1)


class ScoreRangeSpec(FileSpec):
    model_config = STRICT
    min: float | None = None
    max: float | None = None

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if not given & {"min", "max"}:
            yield None, "give at least one of min or max"
        low, high = valid.get("min"), valid.get("max")
        if low is not None and high is not None and low > high:
            yield None, f"min ({low}) is greater than max ({high})"


class AudienceSpec(RuleSpec):
    """Who a campaign is for: the rule language plus what the nightly profile knows."""

    stage: OneOrMany | None = None
    entered_stage: WithinSpec | None = None
    last_purchase: WithinSpec | None = None
    rfm: SegmentsSpec | None = None
    score: ScoreRangeSpec | None = None
    country: OneOrMany | None = None
    timezone: OneOrMany | None = None

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if not given:
            yield None, "an audience needs at least one criterion (e.g. stage: adopter)"


TriggerKind = Literal["schedule", "stage_entry", "event", "anniversary", "birthday", "inactivity"]
_TRIGGER_KEYS: dict[str, set[str]] = {
    "schedule": set(),
    "stage_entry": set(),
    "birthday": set(),
    "event": {"types"},
    "anniversary": {"of", "years"},
    "inactivity": {"types", "for_"},
}


class TriggerSpec(FileSpec):
    """When a matching member is nudged."""

    model_config = STRICT
    on: TriggerKind
    types: OneOrMany | None = None  # event, inactivity
    of: Literal["joined_at", "first_purchase"] | None = None  # anniversary
    years: int | None = Field(default=None, ge=1, le=100)  # anniversary: at least this many
    for_: Days | None = Field(default=None, alias="for")  # inactivity

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        on = valid.get("on")
        if on is None:
            return
        for name in sorted((given - {"on"}) - _TRIGGER_KEYS[on]):
            key = "for" if name == "for_" else name
            yield key, f"{key} does not apply to 'on: {on}'"
        if on == "event" and ("types" not in given or valid.get("types") == []):
            yield None, "an event trigger needs types: [...]"
        if on == "inactivity" and "for_" not in given:
            yield None, "an inactivity trigger needs for: (e.g. 90d)"


class HoldoutSpec(FileSpec):
    model_config = STRICT
    percent: float = Field(gt=0, lt=100)
    salt: str = Field(min_length=1)


class EligibilitySpec(FileSpec):
    model_config = STRICT
    once_per_member: bool = False
    cooldown: Days | None = None
    holdout: HoldoutSpec | None = None
    max_per_run: int | None = Field(default=None, ge=1, le=MAX_COUNT)

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if valid.get("once_per_member") is True and "cooldown" in given:
            yield None, "give once_per_member or cooldown, not both"


RewardKind = Literal["discount", "credit", "gift", "vip_invite"]
_REWARD_KEYS: dict[str, set[str]] = {
    "discount": {"percent_off", "amount_off", "expires_in", "cost_estimate"},
    "credit": {"amount", "expires_in"},
    "gift": {"item", "item_cost"},
    "vip_invite": {"programme", "programme_cost", "expires_in"},
}


class RewardSpec(FileSpec):
    """What the member gets. Which keys apply depends on ``kind``."""

    model_config = STRICT
    kind: RewardKind
    percent_off: float | None = Field(default=None, gt=0, le=100)
    amount_off: PositiveMoney | None = None
    amount: PositiveMoney | None = None
    cost_estimate: PositiveMoney | None = None
    item: str | None = Field(default=None, min_length=1)
    item_cost: PositiveMoney | None = None
    programme: str | None = Field(default=None, min_length=1)
    programme_cost: PositiveMoney | None = None
    expires_in: Days | None = None

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        kind = valid.get("kind")
        if kind is None:
            return
        takes = ", ".join(sorted(_REWARD_KEYS[kind]))
        for key in sorted((given - {"kind"}) - _REWARD_KEYS[kind]):
            yield key, f"{key} does not apply to a {kind} reward ({takes})"
        if kind == "discount" and ("percent_off" in given) == ("amount_off" in given):
            yield None, "a discount needs exactly one of percent_off or amount_off"
        if kind == "credit" and "amount" not in given:
            yield None, 'a credit needs amount (e.g. "25.00 USD")'
        if kind == "gift" and not {"item", "item_cost"} <= given:
            yield None, "a gift needs item and item_cost"
        if kind == "vip_invite" and "programme" not in given:
            yield None, "a vip_invite needs programme"


class BudgetSpec(FileSpec):
    model_config = STRICT
    total: PositiveMoney | None = None
    per_month: PositiveMoney | None = None

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if not given & {"total", "per_month"}:
            yield None, "give total, per_month or both"
        total, per_month = valid.get("total"), valid.get("per_month")
        if total is not None and per_month is not None and total.currency != per_month.currency:
            yield None, "total and per_month must be in the same currency"


class EmailSpec(FileSpec):
    model_config = STRICT
    template: Identifier  # templates/email/<template>.html.j2 and .txt.j2
    subject: str = Field(min_length=1, max_length=200)


class ResponseSpec(FileSpec):
    model_config = STRICT
    counts_as: OneOrMany = Field(min_length=1)
    within: Days


class CampaignSpec(FileSpec):
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

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        """Rules across sections, each checked when the sections it reads are valid."""
        audience, trigger = valid.get("audience"), valid.get("trigger")
        eligibility, reward = valid.get("eligibility"), valid.get("reward")
        stageless = audience is not None and audience.stage is None
        if trigger is not None and trigger.on == "stage_entry" and stageless:
            yield "trigger", "a stage_entry trigger needs audience.stage"
        repeats = eligibility is not None and not (
            eligibility.once_per_member or eligibility.cooldown
        )
        if trigger is not None and trigger.on in ("schedule", "inactivity") and repeats:
            yield (
                None,
                f"a {trigger.on} campaign needs eligibility.once_per_member or "
                "eligibility.cooldown, or it would nudge the same members every night",
            )
        if "budget" in given and "reward" not in given:
            yield "budget", "a budget needs a reward to spend it on"
        budget = valid.get("budget")
        if budget is None or reward is None:
            return
        if reward.kind == "discount" and reward.percent_off and not reward.cost_estimate:
            yield (
                "budget",
                "a budget on a percent discount needs reward.cost_estimate "
                "(what finance reserves per reward)",
            )
        cost = reward_cost(reward)
        budget_currency = (budget.total or budget.per_month).currency
        if cost is not None and cost.currency != budget_currency:
            yield (
                "budget",
                f"the budget is in {budget_currency} but the reward costs {cost.currency}",
            )


def reward_cost(reward: RewardSpec) -> MoneyField | None:
    """What one reward is counted as costing when it is reserved."""
    if reward.kind == "discount":
        return reward.cost_estimate or reward.amount_off
    if reward.kind == "credit":
        return reward.amount
    if reward.kind == "gift":
        return reward.item_cost
    return reward.programme_cost


class CapSpec(FileSpec):
    model_config = STRICT
    max: int = Field(ge=1, le=MAX_COUNT)
    per: Days


class FatigueSpec(FileSpec):
    model_config = STRICT
    unanswered_nudges: int = Field(default=3, ge=1, le=100)
    tag: Identifier = "nudge-fatigued"
    rest_for: Days = 90
    recover_on: Literal["any_response"] = "any_response"


class SendWindowSpec(FileSpec):
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

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        start, end = valid.get("start"), valid.get("end")
        if start is not None and end is not None and start >= end:
            yield None, "start must be before end"


class PolicySpec(FileSpec):
    """``campaigns/policy.yaml``: guards that apply to every campaign."""

    model_config = STRICT
    frequency_caps: list[CapSpec] = Field(default_factory=list)
    fatigue: FatigueSpec = FatigueSpec()
    send_window: SendWindowSpec = SendWindowSpec()
