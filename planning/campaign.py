"""Compiled campaigns and policy: the values the planner works with (no pydantic, no YAML)."""

from __future__ import annotations

from dataclasses import dataclass

from audience.criteria import Audience
from audience.rules import ALWAYS, AllOf, Attribute, Rule
from nudgeflow.money import Money
from planning.campaign_spec import CampaignSpec, PolicySpec, RewardSpec, reward_cost


@dataclass(frozen=True)
class Trigger:
    kind: str  # schedule | stage_entry | event | anniversary | birthday | inactivity
    types: tuple[str, ...] = ()  # event: what fires it; inactivity: what counts as activity
    of: str = "joined_at"  # anniversary: joined_at | first_purchase
    years: int = 1  # anniversary: at least this many years
    for_days: int | None = None  # inactivity: no such event for this long


@dataclass(frozen=True)
class Reward:
    kind: str  # discount | credit | gift | vip_invite
    cost: Money | None  # what one reward is reserved at
    percent_off: float | None = None
    amount_off: Money | None = None
    amount: Money | None = None
    item: str | None = None
    programme: str | None = None
    expires_in_days: int | None = None

    def describe(self) -> str:
        if self.kind == "discount":
            off = f"{self.percent_off:g}%" if self.percent_off else str(self.amount_off)
            return f"discount {off} off"
        if self.kind == "credit":
            return f"credit {self.amount}"
        if self.kind == "gift":
            return f"gift: {self.item}"
        return f"vip_invite: {self.programme}"

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "percent_off": self.percent_off,
            "amount_off": str(self.amount_off) if self.amount_off else None,
            "amount": str(self.amount) if self.amount else None,
            "item": self.item,
            "programme": self.programme,
            "expires_in_days": self.expires_in_days,
            "cost": str(self.cost) if self.cost else None,
        }


@dataclass(frozen=True)
class Budget:
    total: Money | None
    per_month: Money | None

    @property
    def currency(self) -> str:
        money = self.total or self.per_month
        assert money is not None
        return money.currency


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    source: str  # the file it came from, for messages
    enabled: bool
    priority: int
    audience: Audience
    trigger: Trigger
    once_per_member: bool
    cooldown_days: int | None
    holdout_percent: float  # 0 when there is no control group
    holdout_salt: str
    max_per_run: int | None
    reward: Reward | None
    budget: Budget | None
    template: str
    subject: str
    response_types: tuple[str, ...]
    response_within_days: int
    owner: str | None = None

    @property
    def occurrence_kind(self) -> str:
        """What makes two sends to one member different occurrences (DESIGN.md §6):
        ``year`` for birthdays and anniversaries, ``once``, or ``date`` (cooldown and the rest).
        """
        if self.trigger.kind in ("birthday", "anniversary"):
            return "year"
        return "once" if self.once_per_member else "date"


@dataclass(frozen=True)
class FrequencyCap:
    max: int
    per_days: int


@dataclass(frozen=True)
class Policy:
    frequency_caps: tuple[FrequencyCap, ...]
    unanswered_nudges: int
    fatigue_tag: str
    rest_days: int
    send_start: str
    send_end: str
    send_timezone: str


def _reward(spec: RewardSpec) -> Reward:
    return Reward(
        kind=spec.kind,
        cost=reward_cost(spec),
        percent_off=spec.percent_off,
        amount_off=spec.amount_off,
        amount=spec.amount,
        item=spec.item,
        programme=spec.programme,
        expires_in_days=spec.expires_in,
    )


def compile_campaign(spec: CampaignSpec, source: str) -> Campaign:
    a = spec.audience
    parts: list[Rule] = []
    rule_part = a.model_copy(
        update={
            "stage": None,
            "entered_stage": None,
            "last_purchase": None,
            "rfm": None,
            "score": None,
            "country": None,
            "timezone": None,
        }
    )
    has_rule = any(
        getattr(rule_part, name) is not None
        for name in ("events", "spend", "tenure", "attributes", "tags", "all_of", "any_of", "not_")
    )
    if has_rule:
        parts.append(rule_part.to_rule())
    if a.country is not None:
        parts.append(Attribute("country", "in", tuple(a.country)))
    if a.timezone is not None:
        parts.append(Attribute("timezone", "in", tuple(a.timezone)))
    rule: Rule = ALWAYS if not parts else parts[0] if len(parts) == 1 else AllOf(tuple(parts))
    audience = Audience(
        rule=rule,
        stages=tuple(a.stage) if a.stage is not None else None,
        entered_within_days=a.entered_stage.within if a.entered_stage else None,
        last_purchase_within_days=a.last_purchase.within if a.last_purchase else None,
        segments=tuple(a.rfm.segment) if a.rfm else None,
        score_min=a.score.min if a.score else None,
        score_max=a.score.max if a.score else None,
    )
    t = spec.trigger
    trigger = Trigger(
        kind=t.on,
        types=tuple(t.types or (["purchase"] if t.on == "inactivity" else [])),
        of=t.of or "joined_at",
        years=t.years or 1,
        for_days=t.for_,
    )
    e = spec.eligibility
    return Campaign(
        id=spec.id,
        name=spec.name,
        source=source,
        enabled=spec.enabled,
        priority=spec.priority,
        audience=audience,
        trigger=trigger,
        once_per_member=e.once_per_member,
        cooldown_days=e.cooldown,
        holdout_percent=e.holdout.percent if e.holdout else 0.0,
        holdout_salt=e.holdout.salt if e.holdout else "",
        max_per_run=e.max_per_run,
        reward=_reward(spec.reward) if spec.reward else None,
        budget=Budget(spec.budget.total, spec.budget.per_month) if spec.budget else None,
        template=spec.email.template,
        subject=spec.email.subject,
        response_types=tuple(spec.response.counts_as),
        response_within_days=spec.response.within,
        owner=spec.owner,
    )


def compile_policy(spec: PolicySpec) -> Policy:
    return Policy(
        frequency_caps=tuple(FrequencyCap(c.max, c.per) for c in spec.frequency_caps),
        unanswered_nudges=spec.fatigue.unanswered_nudges,
        fatigue_tag=spec.fatigue.tag,
        rest_days=spec.fatigue.rest_for,
        send_start=spec.send_window.start,
        send_end=spec.send_window.end,
        send_timezone=spec.send_window.timezone,
    )
