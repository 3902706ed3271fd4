"""Explain a rehearsed night for one member (``nudgeflow why``), campaign by campaign.

Every answer comes from a rule's single owner: a candidate's outcome and the facts behind
an exclusion from the plan (``Plan.exclusion``), a member who was not matched from the pure
evaluators of the audience (``audience.criteria``, ``audience.evaluate``) and of the trigger
(``domain.triggers``). This module only puts them into words.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from audience.criteria import ProfileFacts, explain_profile
from audience.evaluate import explain
from audience.facts import MemberFacts
from audience.pathways import explain_position
from domain.campaign import Campaign
from domain.plan import (
    AlreadyReceived,
    BudgetSpent,
    Exclusion,
    NoConsent,
    OutOfSeason,
    OverCap,
    ReferralLimit,
    ReferralRefused,
    Resting,
    RunLimit,
    TakenTonight,
)
from domain.referrals import EXISTING_CUSTOMER, SELF_REFERRAL, Verdict
from domain.triggers import TriggerFacts, TriggerNight, trigger_miss
from night.plan import Rehearsal
from nudgeflow.errors import NotFoundError
from nudgeflow.timeutil import business_date
from store import approvals
from store.member_facts import find_member, member_facts, profile_facts, trigger_facts
from store.pathways_sql import Night, position_of

_WITHDRAWALS = {"unsubscribed": "unsubscribed", "email_bounced": "email bounced"}


def explain_member(rehearsal: Rehearsal, member_id: str) -> list[tuple[str, str]]:
    """(campaign id, what happened to the member) for every campaign of the set, in its
    order; raises ``NotFoundError`` for an unknown member."""
    connection, as_of, as_of_end = rehearsal.connection, rehearsal.as_of, rehearsal.as_of_end
    pk = find_member(connection, member_id)
    if pk is None:
        raise NotFoundError(f"no member with member_id {member_id!r}")
    facts = member_facts(connection, pk, as_of, as_of_end)
    profile = profile_facts(connection, pk)
    triggers = trigger_facts(connection, pk, facts)
    plan = rehearsal.night.plan
    plans = {c.campaign.id: c for c in plan.campaigns}
    lines = []
    for campaign in rehearsal.campaign_set.campaigns:
        if not campaign.enabled:
            lines.append((campaign.id, "not considered: the campaign is disabled"))
            continue
        campaign_plan = plans[campaign.id]
        outcome = campaign_plan.outcomes.get(pk)
        if outcome is None:
            text = _unmatched(rehearsal, campaign, pk, facts, profile, triggers)
        elif outcome == "selected":
            action = next(a for a in campaign_plan.actions if a.member_pk == pk)
            reward = action.reward.describe() if action.reward else "no reward"
            text = f"selected: {reward}, email {action.template}"
            if action.variant is not None:
                text += f" (variant {action.variant})"
            cost = action.reward.cost if action.reward else None
            if cost is not None and campaign.needs_approval(cost):
                text += (
                    f"; its reward ({cost}) is above approval_above ({campaign.approval_above}):"
                    " reserved, then it waits for approval before it is issued"
                )
            text += _next_step(campaign)
        elif outcome == "holdout":
            percent = campaign.holdout_percent
            text = f"held out: in the control group ({percent:g}%), recorded but not sent"
        else:
            exclusion = plan.exclusion(rehearsal.facts, campaign_plan, pk)
            text = f"excluded: {describe_exclusion(exclusion, rehearsal.zone)}"
        lines.append((campaign.id, text))
    return lines


def approval_lines(rehearsal: Rehearsal, member_id: str) -> list[tuple[str, str]]:
    """(campaign id, words) for each of the member's rewards that waited for approval:
    waiting, or decided, by whom and when (instants in UTC), with the reason."""
    lines = []
    for a in approvals.find(rehearsal.connection, member_id=member_id):
        night = f"action {a.action_id} of {a.as_of}"
        if a.decision is None:
            text = f"{night} waits for approval until {a.expires_at:%Y-%m-%d %H:%M} UTC"
        else:
            when = f"{a.decided_at:%Y-%m-%d %H:%M} UTC" if a.decided_at else ""
            text = f"{night} {a.decision} by {a.decided_by} {when}"
            if a.reason:
                text += f": {a.reason}"
        lines.append((a.campaign_id, f"{text} (now {a.state})"))
    return lines


def _unmatched(
    r: Rehearsal,
    campaign: Campaign,
    pk: int,
    facts: MemberFacts,
    profile: ProfileFacts | None,
    triggers: TriggerFacts | None,
) -> str:
    if profile is None or triggers is None:
        return "not matched: the member has no profile"
    reason = explain_profile(campaign.audience, profile, r.as_of, r.as_of_end)
    target = campaign.audience.pathway
    if reason is None and target is not None and target.pathway is not None:
        as_of = Night.of(r.connection, r.as_of, r.as_of_end, r.zone)
        position = position_of(r.connection, target.pathway, as_of, pk)
        reason = explain_position(target, position)
    if reason is None:
        reason = explain(campaign.audience.rule, facts, r.as_of_end)
    if reason is not None:
        return f"not in the audience: {reason}"
    night = TriggerNight(r.as_of, r.as_of_end, r.night.previous_as_of, r.zone)
    missed = trigger_miss(campaign.trigger, campaign.audience, triggers, night)
    if missed is not None:
        return f"not triggered: {missed}"
    return "not matched (the audience and trigger seem to hold: please report this)"


def _next_step(campaign: Campaign) -> str:
    """``; on pathway X, next step: B`` for a campaign targeting a pathway position."""
    target = campaign.audience.pathway
    if target is None:
        return ""
    if not target.not_done:
        return f"; on pathway {target.pathway_id}"
    return f"; on pathway {target.pathway_id}, next step: {', '.join(target.not_done)}"


def _season(starts: date | None, ends: date | None) -> str:
    if starts is not None and ends is not None:
        return f"from {starts} to {ends}"
    if starts is not None:
        return f"from {starts}"
    return f"until {ends}"


_REFUSALS = {
    SELF_REFERRAL: "self-referral",
    EXISTING_CUSTOMER: "referred an existing customer",
}


def _refusal(verdict: Verdict, zone: ZoneInfo) -> str:
    """``self-referral (referral r1 on 2026-06-30: …)``."""
    what = _REFUSALS.get(verdict.reason, "referral not converted")
    conversion = verdict.conversion
    on = business_date(conversion.occurred_at, zone)
    which = f"referral {conversion.referral_id} " if conversion.referral_id else ""
    return f"{what} ({which}converted on {on}: {verdict.detail})"


def describe_exclusion(exclusion: Exclusion, zone: ZoneInfo) -> str:
    """A guard's reason, with the facts behind it, in words."""
    match exclusion:
        case NoConsent(paused_until=int() as until):
            last = business_date(until - 1, zone)
            return f"no consent (paused all nudges until {last} in the preference centre)"
        case NoConsent(category_out=(category, at)):
            return f"no consent (unsubscribed from {category} on {business_date(at, zone)})"
        case NoConsent(withdrawal=None):
            return "no consent (opted out of email)"
        case NoConsent(withdrawal=(kind, at)):
            what = _WITHDRAWALS.get(kind, "reported spam")
            return f"no consent ({what} on {business_date(at, zone)})"
        case Resting(until=until):
            return f"fatigued (resting after unanswered nudges until {until or 'further notice'})"
        case AlreadyReceived(earlier=earlier, occurrence_kind=kind, cooldown_days=days):
            when = f" on {earlier.as_of}"
            if kind == "once":
                return f"already received{when} (once per member)"
            if kind == "year":
                return f"already received this year{when}"
            if days is None:
                return f"already received{when}"
            return f"already received{when} (cooldown {days} days)"
        case TakenTonight(campaign_id=taker, priority=None):
            return f"lower priority ({taker} already has the member tonight)"
        case TakenTonight(campaign_id=taker, priority=priority):
            return f"lower priority ({taker}, priority {priority}, took the member tonight)"
        case OverCap(nudges=nudges, per_days=days):
            return f"frequency cap ({nudges} nudges in the last {days} days)"
        case BudgetSpent(left=left, cost=cost, selected=selected):
            return (
                f"budget spent ({left} was left before tonight, one reward "
                f"costs {cost}, {selected:,} selected tonight)"
            )
        case RunLimit(limit=limit):
            return f"max_per_run ({limit} per night) reached"
        case OutOfSeason(starts_on=starts, ends_on=ends):
            return f"out of season (the campaign runs {_season(starts, ends)})"
        case ReferralRefused(refused=()):
            return "referral not converted (no referral_converted event names a referred member)"
        case ReferralRefused(refused=refused):
            return "; ".join(_refusal(v, zone) for v in refused)
        case ReferralLimit(rewarded=rewarded, max=most, per_days=days):
            return (
                f"referral velocity ({rewarded} referrals rewarded in the last {days} days, "
                f"at most {most})"
            )
    raise TypeError(f"not an exclusion: {exclusion!r}")
