"""Compile the validated file specs (``planning.campaign_spec``) into the campaign and policy
values of ``domain.campaign``."""

from __future__ import annotations

from audience.criteria import Audience
from audience.rules import ALWAYS, AllOf, Attribute, Rule
from domain.campaign import Budget, Campaign, FrequencyCap, Policy, Reward, Trigger, Variant
from planning.campaign_spec import CampaignSpec, RewardSpec, reward_cost
from planning.policy_spec import PolicySpec


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
            "pathway": None,
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
        pathway=a.pathway.compile() if a.pathway else None,
    )
    t = spec.trigger
    trigger = Trigger(
        kind=t.on,
        types=tuple(t.types or (["purchase"] if t.on == "inactivity" else [])),
        of=t.of or "joined_at",
        years=t.years or 1,
        for_days=t.for_,
        direction=t.direction or "up",
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
        category=spec.category,
        approval_above=spec.approval_above,
        variants=tuple(
            Variant(
                id=v.id,
                template=v.template or spec.email.template,
                subject=v.subject or spec.email.subject,
                weight=v.weight,
            )
            for v in spec.variants or ()
        ),
        starts_on=spec.starts_on,
        ends_on=spec.ends_on,
        referral_limit=(
            FrequencyCap(spec.referral.max_rewarded.max, spec.referral.max_rewarded.per)
            if spec.referral is not None and spec.referral.max_rewarded is not None
            else None
        ),
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
        categories=tuple(spec.categories),
        public_email_domains=frozenset(spec.referrals.public_email_domains),
        approval_above=spec.approval_above,
        approval_expires_days=spec.approval_expires_after,
    )
