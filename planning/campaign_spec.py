"""The shape of ``campaigns/<id>.yaml`` (pydantic, strict).

These mirror the YAML; ``planning.compile`` turns them into the values the planner uses.
Each key's docstring is its description in the JSON Schema editors autocomplete from
(``planning.schemas``); rules across keys are in ``check`` (see ``audience.filespec``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import Field

from audience.fields import (
    MAX_COUNT,
    STRICT,
    Days,
    Identifier,
    IsoDate,
    MoneyField,
    NonNegativeMoney,
    OneOrMany,
    PositiveMoney,
)
from audience.filespec import Broken, FileSpec
from audience.pathways import PathwayTargetSpec
from audience.rules import RuleSpec

# policy.yaml's shape lived here before planning.policy_spec; kept importable from here.
from planning.policy_spec import PolicySpec as PolicySpec


class WithinSpec(FileSpec):
    model_config = STRICT
    within: Days
    """How many days back, tonight included. Example: `within: 14d`."""


class SegmentsSpec(FileSpec):
    model_config = STRICT
    segment: OneOrMany = Field(min_length=1)
    """One or more RFM segments defined in lifecycle.yaml. Example:
    `segment: [champions, loyal]`."""


class ScoreRangeSpec(FileSpec):
    model_config = STRICT
    min: float | None = None
    """The lowest engagement score that matches. Example: `min: 40`."""
    max: float | None = None
    """The highest engagement score that matches. Example: `max: 90`."""

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
    """The member's current lifecycle stage is one of these (ids from lifecycle.yaml).
    Example: `stage: [loyalist, advocate]`."""
    entered_stage: WithinSpec | None = None
    """The member entered their current stage on one of the last `within` days. Example:
    `entered_stage: {within: 14d}`."""
    last_purchase: WithinSpec | None = None
    """The member's last purchase was within the period. Example:
    `last_purchase: {within: 60d}`."""
    rfm: SegmentsSpec | None = None
    """The member's RFM segment is one of these. Example: `rfm: {segment: champions}`."""
    score: ScoreRangeSpec | None = None
    """The engagement score is at least `min` and/or at most `max`. Example:
    `score: {min: 40}`."""
    country: OneOrMany | None = None
    """The member's country is one of these. Example: `country: [US, CA, GB]`."""
    timezone: OneOrMany | None = None
    """The member's time zone is one of these. Example: `timezone: Europe/Paris`."""
    pathway: PathwayTargetSpec | None = None
    """A position on a pathway (campaigns/pathways/): started it, not at its end, has done
    the key actions of `done` and none of `not_done`. Example:
    `pathway: {id: retention-to-advocacy, done: answered, not_done: guest-post}`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if not given:
            yield None, "an audience needs at least one criterion (e.g. stage: adopter)"


TriggerKind = Literal["schedule", "stage_entry", "event", "anniversary", "birthday", "inactivity"]
TRIGGER_KEYS: dict[str, set[str]] = {
    "schedule": set(),
    "stage_entry": {"direction"},
    "birthday": set(),
    "event": {"types"},
    "anniversary": {"of", "years"},
    "inactivity": {"types", "for_"},
}


class TriggerSpec(FileSpec):
    """When a matching member is nudged."""

    model_config = STRICT
    on: TriggerKind
    """What fires the campaign: schedule (every night), stage_entry, event, anniversary,
    birthday or inactivity. Example: `on: stage_entry`."""
    types: OneOrMany | None = None
    """For `event`: the event types that fire it (required); for `inactivity`: what counts
    as activity (default purchase). Example: `types: [referral_converted]`."""
    of: Literal["joined_at", "first_purchase"] | None = None
    """For `anniversary`: the date whose anniversary is celebrated (default joined_at).
    Example: `of: first_purchase`."""
    years: int | None = Field(default=None, ge=1, le=100)
    """For `anniversary`: the first anniversary to celebrate, 1 to 100 (default 1). Example:
    `years: 3`."""
    for_: Days | None = Field(default=None, alias="for")
    """For `inactivity`: how long without any of `types` (required). Example: `for: 120d`."""
    direction: Literal["up", "down", "any"] | None = None
    """For `stage_entry`: which moves into the stage fire it: `up` (from a lower stage or
    from none: the default), `down` (a member who dropped from a higher stage, e.g. a
    win-back) or `any`. Example: `direction: down`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        on = valid.get("on")
        if on is None:
            return
        for name in sorted((given - {"on"}) - TRIGGER_KEYS[on]):
            key = "for" if name == "for_" else name
            yield key, f"{key} does not apply to 'on: {on}'"
        if on == "event" and ("types" not in given or valid.get("types") == []):
            yield None, "an event trigger needs types: [...]"
        if on == "inactivity" and "for_" not in given:
            yield None, "an inactivity trigger needs for: (e.g. 90d)"


class HoldoutSpec(FileSpec):
    model_config = STRICT
    percent: float = Field(gt=0, lt=100)
    """The share of selected members held out as a control group, between 0 and 100.
    Example: `percent: 10`."""
    salt: str = Field(min_length=1)
    """Draws the group: the same salt keeps the same members out; change it to draw anew.
    Example: `salt: "2026-q4"`."""


class EligibilitySpec(FileSpec):
    model_config = STRICT
    once_per_member: bool = False
    """A member receives this campaign at most once, ever. Example: `once_per_member: true`."""
    cooldown: Days | None = None
    """A member receives it again only after this long (not with once_per_member). Example:
    `cooldown: 180d`."""
    holdout: HoldoutSpec | None = None
    """A control group: recorded but sent nothing, to measure the effect. Example:
    `holdout: {percent: 10, salt: "2026-q4"}`."""
    max_per_run: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    """At most this many members per night, 1 to 1,000,000; the rest wait for later
    nights. Example: `max_per_run: 500`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if valid.get("once_per_member") is True and "cooldown" in given:
            yield None, "give once_per_member or cooldown, not both"


RewardKind = Literal["discount", "credit", "gift", "vip_invite"]
REWARD_KEYS: dict[str, set[str]] = {
    "discount": {"percent_off", "amount_off", "expires_in", "cost_estimate"},
    "credit": {"amount", "expires_in"},
    "gift": {"item", "item_cost"},
    "vip_invite": {"programme", "programme_cost", "expires_in"},
}


MAX_PRIORITY = 1000


class RewardSpec(FileSpec):
    """What the member gets. Which keys apply depends on ``kind``."""

    model_config = STRICT
    kind: RewardKind
    """discount (a single-use code), credit (on the customer balance), gift (shipped by
    the team) or vip_invite (a signed invitation link). Example: `kind: discount`."""
    percent_off: float | None = Field(default=None, gt=0, le=100)
    """A discount's percentage, more than 0 and at most 100 (or give amount_off). Example:
    `percent_off: 15`."""
    amount_off: PositiveMoney | None = None
    """A discount's fixed amount off, more than zero (or give percent_off). Example:
    `amount_off: "10.00 USD"`."""
    amount: PositiveMoney | None = None
    """A credit's amount, more than zero (required for a credit). Example:
    `amount: "25.00 USD"`."""
    cost_estimate: PositiveMoney | None = None
    """What finance reserves per code for a percent discount (needed with a budget).
    Example: `cost_estimate: "9.00 USD"`."""
    item: str | None = Field(default=None, min_length=1)
    """A gift's item, as members read it (required for a gift). Example:
    `item: a handwritten thank-you card`."""
    item_cost: PositiveMoney | None = None
    """What one gift costs, more than zero (required for a gift). Example:
    `item_cost: "4.50 USD"`."""
    programme: str | None = Field(default=None, min_length=1)
    """The programme a vip_invite invites to (required for a vip_invite). Example:
    `programme: the Inner Circle`."""
    programme_cost: PositiveMoney | None = None
    """What one invitation costs, more than zero; leave it out if it costs nothing.
    Example: `programme_cost: "20.00 USD"`."""
    expires_in: Days | None = None
    """How long a discount, credit or invitation stays valid, at most 100 years. Example:
    `expires_in: 30d`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        kind = valid.get("kind")
        if kind is None:
            return
        takes = ", ".join(sorted(REWARD_KEYS[kind]))
        for key in sorted((given - {"kind"}) - REWARD_KEYS[kind]):
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
    """What the campaign's rewards may cost over its whole life, more than zero. Example:
    `total: "5000.00 USD"`."""
    per_month: PositiveMoney | None = None
    """What its rewards may cost per calendar month, more than zero. Example:
    `per_month: "1000.00 USD"`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        if not given & {"total", "per_month"}:
            yield None, "give total, per_month or both"
        total, per_month = valid.get("total"), valid.get("per_month")
        if total is not None and per_month is not None and total.currency != per_month.currency:
            yield None, "total and per_month must be in the same currency"


class EmailSpec(FileSpec):
    model_config = STRICT
    template: Identifier
    """The email's name: templates/email/<template>.html.j2 and .txt.j2 must both exist.
    Example: `template: loyalist_discount`."""
    subject: str = Field(min_length=1, max_length=200)
    """The subject line, a template too (one line, at most 200 characters). Example:
    `subject: "{{ member.first_name }}, 15% off"`."""


class VariantSpec(FileSpec):
    """One arm of an A/B/n test: what it changes in the email, and its share of members."""

    model_config = STRICT
    id: Identifier
    """Unique within the campaign; names the variant in actions, `why` and `impact`.
    Example: `id: bold-subject`."""
    subject: str | None = Field(default=None, min_length=1, max_length=200)
    """This variant's subject line (default: email.subject), a template too. Example:
    `subject: "{{ member.first_name }}, this one is for you"`."""
    template: Identifier | None = None
    """This variant's email (default: email.template): templates/email/<template>.html.j2
    and .txt.j2 must both exist. Example: `template: loyalist_discount_short`."""
    weight: float = Field(default=1.0, gt=0, le=1000)
    """Its share, relative to the other variants' weights, more than 0 (default 1).
    Example: `weight: 2`."""


MAX_VARIANTS = 26


class RewardedLimitSpec(FileSpec):
    """At most ``max`` rewarded referrals per advocate in any ``per`` days."""

    model_config = STRICT
    max: int = Field(ge=1, le=MAX_COUNT)
    """The most referral rewards one advocate earns from this campaign in any window of
    `per` days; further conversions are refused as referral_velocity. Example: `max: 5`."""
    per: Days
    """The length of the rolling window. Example: `per: 30d`."""


class ReferralSpec(FileSpec):
    """Limits of a referral campaign (one triggered by referral_converted), on top of the
    self-referral and conversion guards every referral campaign gets."""

    model_config = STRICT
    max_rewarded: RewardedLimitSpec | None = None
    """A velocity limit per advocate. Example: `max_rewarded: {max: 5, per: 30d}`."""


class ResponseSpec(FileSpec):
    model_config = STRICT
    counts_as: OneOrMany = Field(min_length=1)
    """The event types that count as responding to the nudge. Example:
    `counts_as: [email_clicked, purchase]`."""
    within: Days
    """How long after the send a response counts. Example: `within: 14d`."""


class CampaignSpec(FileSpec):
    """One campaign file."""

    model_config = STRICT
    id: Identifier
    """Unique across all campaign files; names the campaign in plans, the ledger and
    reports. Never reuse one for a different campaign. Example: `id: loyalist-discount`."""
    name: str = Field(min_length=1)
    """A human title, shown in plans and to templates as campaign.name. Example:
    `name: 15% thank-you discount for new loyalists`."""
    owner: str | None = None
    """Who to ask about the campaign: a team or a person. Example:
    `owner: lifecycle-marketing`."""
    description: str | None = None
    """Free text. Example: `description: Thanks members who just became loyalists.`"""
    category: Identifier | None = None
    """What kind of nudge this is, one of policy.yaml's `categories`: a member who
    unsubscribed from the category in the preference centre is not nudged. None: only
    email consent and a pause apply. Example: `category: surveys`."""
    enabled: bool = True
    """false keeps the file (and validates it) but never plans it. Example: `enabled: false`."""
    starts_on: IsoDate | None = None
    """A seasonal campaign: the first business date it runs (in the business time zone);
    before it, its members are excluded as out_of_season. Example: `starts_on: 2026-11-27`."""
    ends_on: IsoDate | None = None
    """The last business date a seasonal campaign runs, not before starts_on. Example:
    `ends_on: 2026-12-24`."""
    priority: int = Field(default=0, ge=0, le=MAX_PRIORITY)
    """0 to 1000: when several campaigns want the same member on the same night, the
    highest wins (ties: the id). Example: `priority: 50`."""
    audience: AudienceSpec
    """Who the campaign is for; every key given must hold. Example:
    `audience: {stage: loyalist, tags: {none_of: [staff]}}`."""
    trigger: TriggerSpec
    """When a member of the audience is nudged. Example: `trigger: {on: stage_entry}`."""
    eligibility: EligibilitySpec = EligibilitySpec()
    """How often one member may receive it, a control group, a per-night limit. Example:
    `eligibility: {once_per_member: true}`."""
    reward: RewardSpec | None = None
    """What the member gets (none: an email only); its keys depend on its kind. Example:
    `reward: {kind: discount, percent_off: 15, expires_in: 30d}`."""
    budget: BudgetSpec | None = None
    """How much the rewards may cost (none: unlimited). Example:
    `budget: {total: "5000.00 USD", per_month: "1000.00 USD"}`."""
    approval_above: NonNegativeMoney | None = None
    """Rewards of this campaign that cost more than this wait for a person's approval
    (`nudgeflow approvals`) before they are issued, their budget reserved meanwhile; in the
    reward's currency. Replaces policy.yaml's `approval_above` for this campaign. Example:
    `approval_above: "50.00 USD"`."""
    email: EmailSpec
    """The email's template and subject line. Example:
    `email: {template: loyalist_discount, subject: "Thank you"}`."""
    response: ResponseSpec = ResponseSpec.model_validate(
        {"counts_as": ["email_clicked"], "within": "7d"}
    )
    """What counts as the member responding, for fatigue and measurement. Example:
    `response: {counts_as: [email_clicked, purchase], within: 14d}`."""
    referral: ReferralSpec | None = None
    """For a referral campaign (trigger `{on: event, types: [referral_converted]}`): the
    most rewarded referrals per advocate. Example:
    `referral: {max_rewarded: {max: 5, per: 30d}}`."""
    variants: list[VariantSpec] | None = Field(default=None, min_length=2, max_length=MAX_VARIANTS)
    """An A/B/n test: 2 to 26 variants of the email; each member who is not held out gets
    one, drawn by a salted hash of their id (the same member always gets the same one), in
    proportion to the weights. `nudgeflow impact` compares them. Example:
    `variants: [{id: plain}, {id: bold, subject: "Last chance!", weight: 1}]`."""

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
        starts_on, ends_on = valid.get("starts_on"), valid.get("ends_on")
        if starts_on is not None and ends_on is not None and ends_on < starts_on:
            yield "ends_on", f"ends_on ({ends_on}) is before starts_on ({starts_on})"
        fired_by = (trigger.types or []) if trigger is not None and trigger.on == "event" else []
        converts = "referral_converted" in fired_by
        if converts and len(fired_by) > 1:
            yield (
                "trigger",
                "a referral campaign fires on referral_converted alone "
                "(give the other event types their own campaign)",
            )
        if "referral" in given and trigger is not None and not converts:
            yield "referral", "referral applies only to a campaign triggered by referral_converted"
        variants = valid.get("variants") or []
        ids = [v.id for v in variants]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            yield "variants", f"variant ids must be unique: {', '.join(twice)} given twice"
        if "budget" in given and "reward" not in given:
            yield "budget", "a budget needs a reward to spend it on"
        if "approval_above" in given and "reward" not in given:
            yield "approval_above", "approval_above needs a reward to approve"
        threshold = valid.get("approval_above")
        cost = reward_cost(reward) if reward is not None else None
        if threshold is not None and cost is not None and cost.currency != threshold.currency:
            yield (
                "approval_above",
                f"approval_above is in {threshold.currency} but the reward costs {cost.currency}",
            )
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
