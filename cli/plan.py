"""``nudgeflow plan`` and ``nudgeflow why``: look before you leap; nothing is written.

Both refresh the profiles, clear the fatigue tags of members who responded (as the run does
before it plans) and plan the night inside one transaction that is rolled back, so
they show exactly what ``nudgeflow run`` would do for that date without changing a row.
``why`` then explains one member campaign by campaign: selected, held out, or the first
audience criterion, trigger or guard that left them out, in plain words.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from sqlalchemy import Connection, false, select

from audience.criteria import ProfileFacts, explain_profile
from audience.evaluate import explain
from audience.facts import MemberFacts
from cli.context import console, process_app
from cli.options import RequiredAsOf
from domain.campaign import Campaign
from domain.plan import EXCLUSION_REASONS, CampaignPlan, Plan
from night.plan import StoredNight, rehearse_plan
from night.report import format_excluded
from nudgeflow.errors import NotFoundError
from nudgeflow.money import Money
from nudgeflow.timeutil import business_date, day_end
from planning.campaign_files import CampaignSet, load_campaign_set
from store.audience_sql import (
    CONSENT_EVENTS,
    COUNTED_STATES,
    SYSTEM,
    StoredBudgets,
    anniversary_days,
    birthday_days,
    event_window_start,
    member_facts,
    profile_facts,
)
from store.profiles import refresh_profiles
from store.schema import actions, events, member_tags, members, profiles

LISTED = 20  # actions listed per campaign in the table; --json lists every one


@dataclass(frozen=True)
class Rehearsal:
    """A night planned inside a transaction that will be rolled back."""

    connection: Connection
    campaign_set: CampaignSet
    night: StoredNight
    as_of: date
    as_of_end: int
    zone: ZoneInfo


@contextmanager
def rehearse(as_of: date) -> Iterator[Rehearsal]:
    """Refresh, recover and plan ``as_of`` in a transaction; roll everything back afterwards."""
    app = process_app()
    campaign_set = load_campaign_set(app.settings.campaigns_dir)
    as_of_end = day_end(as_of, app.zone)
    with app.engine.connect() as connection:
        transaction = connection.begin()
        try:
            refresh_profiles(
                connection, campaign_set.lifecycle, as_of, as_of_end, app.settings.currency
            )
            night = rehearse_plan(connection, campaign_set, as_of, as_of_end, app.zone)
            yield Rehearsal(connection, campaign_set, night, as_of, as_of_end, app.zone)
        finally:
            transaction.rollback()


# --- nudgeflow plan ------------------------------------------------------------------------


def _only(plan: Plan, campaign_id: str | None, campaign_set: CampaignSet) -> list[CampaignPlan]:
    if campaign_id is None:
        return plan.campaigns
    chosen = [c for c in plan.campaigns if c.campaign.id == campaign_id]
    if not chosen:
        known = {c.id: c for c in campaign_set.campaigns}
        if campaign_id in known:
            raise NotFoundError(f"campaign {campaign_id!r} is disabled (enabled: false)")
        raise NotFoundError(f"no campaign with id {campaign_id!r}")
    return chosen


def plan(
    as_of: RequiredAsOf,
    campaign_id: str | None = typer.Option(
        None, "--campaign", metavar="ID", help="Only this campaign."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON with every action."),
) -> None:
    """Show what the nightly run would plan for a date, without writing anything."""
    with rehearse(as_of) as rehearsal:
        chosen = _only(rehearsal.night.plan, campaign_id, rehearsal.campaign_set)
    if as_json:
        document = {"as_of": as_of.isoformat(), "campaigns": [c.as_dict() for c in chosen]}
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    console.print(f"Plan for {as_of:%Y-%m-%d} (nothing written)", markup=False)
    if not chosen:
        console.print("no enabled campaigns")
    for c in chosen:
        _print_campaign(c)


def _print_campaign(c: CampaignPlan) -> None:
    campaign = c.campaign
    held = c.excluded["holdout"]
    console.print(
        f"\n{campaign.id} (priority {campaign.priority}): matched {c.matched:,}, "
        f"selected {c.selected:,}, held out {held:,}",
        markup=False,
    )
    console.print(f"  excluded: {format_excluded(c.excluded, every=True)}", markup=False)
    chosen = [a for a in c.actions if not a.holdout]
    for action in chosen[:LISTED]:
        reward = action.reward.describe() if action.reward else "no reward"
        console.print(f"    {action.member_id:<24} {reward:<28} {action.template}", markup=False)
    if len(chosen) > LISTED:
        console.print(f"    … and {len(chosen) - LISTED:,} more", markup=False)


# --- nudgeflow why ---------------------------------------------------------------------


def why(
    member_id: Annotated[str, typer.Argument(metavar="MEMBER_ID", help="The member's member_id.")],
    as_of: RequiredAsOf,
) -> None:
    """Explain, campaign by campaign, why a member is or is not selected on a date."""
    with rehearse(as_of) as rehearsal:
        lines = explain_member(rehearsal, member_id)
    console.print(f"{member_id} on {as_of:%Y-%m-%d}:", markup=False)
    for campaign_id, text in lines:
        console.print(f"  {campaign_id}: {text}", markup=False)


def explain_member(rehearsal: Rehearsal, member_id: str) -> list[tuple[str, str]]:
    """(campaign id, what happened to the member) for every campaign, in priority order."""
    connection = rehearsal.connection
    row = (
        connection.execute(select(members).where(members.c.member_id == member_id))
        .mappings()
        .first()
    )
    if row is None:
        raise NotFoundError(f"no member with member_id {member_id!r}")
    pk = int(row["id"])
    facts = member_facts(connection, pk, rehearsal.as_of, rehearsal.as_of_end)
    profile = profile_facts(connection, pk)
    plans = {c.campaign.id: c for c in rehearsal.night.plan.campaigns}
    lines = []
    for campaign in rehearsal.campaign_set.campaigns:
        if not campaign.enabled:
            lines.append((campaign.id, "not considered: the campaign is disabled"))
            continue
        campaign_plan = plans[campaign.id]
        outcome = campaign_plan.outcomes.get(pk)
        if outcome is None:
            text = _unmatched(rehearsal, campaign, row, facts, profile)
        else:
            text = _outcome(rehearsal, campaign_plan, pk, outcome)
        lines.append((campaign.id, text))
    return lines


def _unmatched(
    r: Rehearsal,
    campaign: Campaign,
    member: Any,
    facts: MemberFacts,
    profile: ProfileFacts | None,
) -> str:
    if profile is None:
        return "not matched: the member has no profile"
    reason = explain_profile(campaign.audience, profile, r.as_of, r.as_of_end)
    if reason is None:
        reason = explain(campaign.audience.rule, facts, r.as_of_end)
    if reason is not None:
        return f"not in the audience: {reason}"
    trigger = _trigger_miss(r, campaign, member, facts, profile)
    if trigger is not None:
        return f"not triggered: {trigger}"
    return "not matched (the audience and trigger seem to hold: please report this)"


def _day(seconds: int, zone: ZoneInfo) -> str:
    return business_date(seconds, zone).isoformat()


def _trigger_miss(
    r: Rehearsal, campaign: Campaign, member: Any, facts: MemberFacts, profile: ProfileFacts
) -> str | None:
    """Why the trigger did not fire tonight, in words (``None`` if it did)."""
    trigger, as_of = campaign.trigger, r.as_of
    types = " or ".join(trigger.types)
    if trigger.kind == "stage_entry":
        if campaign.audience.entered_within_days is not None:
            return None
        entered, previous = profile.stage_entered_on, r.night.previous_as_of
        if entered is None or profile.stage_entry_initial:
            return f"{profile.stage or 'no stage'} was found by the first run, not entered"
        if previous is not None and entered <= previous:
            return f"entered {profile.stage} on {entered}, before the previous run ({previous})"
        if previous is None and entered != as_of:
            return f"entered {profile.stage} on {entered}, not on {as_of} (no previous run)"
        return None
    if trigger.kind == "event":
        start = event_window_start(as_of, r.night.previous_as_of, r.zone)
        if not any(e.type in trigger.types and e.occurred_at >= start for e in facts.events):
            return f"no {types} event since {_day(start, r.zone)}"
        return None
    if trigger.kind == "anniversary":
        of_join = trigger.of == "joined_at"
        instant = facts.joined_at if of_join else _first_purchase(r, member["id"])
        what = "joined" if of_join else "first purchased"
        if instant is None:
            return "the join date is unknown" if of_join else "has never purchased"
        day = business_date(instant, r.zone)
        years = as_of.year - day.year
        if day not in anniversary_days(as_of, day.year):
            return f"{what} on {day}: the anniversary is not today"
        if years < trigger.years:
            return f"{what} on {day}: {years} years ago, needs at least {trigger.years}"
        return None
    if trigger.kind == "birthday":
        month, day_of_month = member["birth_month"], member["birth_day"]
        if month is None or day_of_month is None:
            return "no birthday on file"
        if month != as_of.month or day_of_month not in birthday_days(as_of):
            return f"birthday is {month:02d}-{day_of_month:02d}, not today"
        return None
    if trigger.kind == "inactivity":
        assert trigger.for_days is not None
        times = [e.occurred_at for e in facts.events if e.type in trigger.types]
        if not times:
            return f"has never had a {types} event"
        if max(times) >= r.as_of_end - trigger.for_days * 86_400:
            return (
                f"last {types} event on {_day(max(times), r.zone)}, within the last "
                f"{trigger.for_days} days"
            )
        return None
    return None


def _first_purchase(r: Rehearsal, pk: int) -> int | None:
    value = r.connection.execute(
        select(profiles.c.first_purchase_at).where(profiles.c.member_pk == pk)
    ).scalar()
    return int(value) if value is not None else None


def _outcome(r: Rehearsal, campaign_plan: CampaignPlan, pk: int, outcome: str) -> str:
    campaign = campaign_plan.campaign
    if outcome == "selected":
        action = next(a for a in campaign_plan.actions if a.member_pk == pk)
        reward = action.reward.describe() if action.reward else "no reward"
        return f"selected: {reward}, email {action.template}"
    if outcome == "holdout":
        return (
            f"held out: in the control group ({campaign.holdout_percent:g}%), recorded but not sent"
        )
    assert outcome in EXCLUSION_REASONS, outcome
    return f"excluded: {_guard(r, campaign_plan, pk, outcome)}"


def _guard(r: Rehearsal, campaign_plan: CampaignPlan, pk: int, reason: str) -> str:
    """A guard's reason for one member, with the facts behind it."""
    connection, campaign, as_of = r.connection, campaign_plan.campaign, r.as_of
    a = actions.c
    if reason == "consent":
        opted_in = connection.execute(
            select(members.c.email_opt_in).where(members.c.id == pk)
        ).scalar()
        if not opted_in:
            return "no consent (opted out of email)"
        first = connection.execute(
            select(events.c.type, events.c.occurred_at)
            .where(
                events.c.member_pk == pk,
                events.c.type.in_(CONSENT_EVENTS),
                events.c.occurred_at < r.as_of_end,
            )
            .order_by(events.c.occurred_at)
            .limit(1)
        ).first()
        words = {"unsubscribed": "unsubscribed", "email_bounced": "email bounced"}
        if first is None:
            return "no consent"
        what = words.get(first.type, "reported spam")
        return f"no consent ({what} on {_day(first.occurred_at, r.zone)})"
    if reason == "fatigued":
        until = connection.execute(
            select(member_tags.c.expires_on).where(
                member_tags.c.member_pk == pk,
                member_tags.c.tag == r.campaign_set.policy.fatigue_tag,
                member_tags.c.source == SYSTEM,
            )
        ).scalar()
        return f"fatigued (resting after unanswered nudges until {until or 'further notice'})"
    if reason == "already_received":
        last = connection.execute(
            select(a.as_of, a.occurrence)
            .where(a.campaign_id == campaign.id, a.member_pk == pk, a.as_of <= as_of)
            .order_by(a.as_of.desc())
            .limit(1)
        ).first()
        when = f" on {last.as_of}" if last else ""
        if campaign.occurrence_kind == "once":
            return f"already received{when} (once per member)"
        if campaign.occurrence_kind == "year":
            return f"already received this year{when}"
        return f"already received{when} (cooldown {campaign.cooldown_days} days)"
    if reason == "lower_priority":
        for other in r.night.plan.campaigns:
            if other is campaign_plan:
                break
            if other.outcomes.get(pk) in ("selected", "holdout"):
                return (
                    f"lower priority ({other.campaign.id}, priority {other.campaign.priority}, "
                    "took the member tonight)"
                )
        stored = connection.execute(
            select(a.campaign_id).where(a.member_pk == pk, a.as_of == as_of).limit(1)
        ).scalar()
        return f"lower priority ({stored or 'another campaign'} already has the member tonight)"
    if reason == "frequency_cap":
        return f"frequency cap ({_cap_words(r, pk)})"
    if reason == "budget":
        left = StoredBudgets(connection, [campaign], as_of).remaining(campaign.id) or 0
        cost = campaign.reward.cost if campaign.reward else None
        currency = campaign.budget.currency if campaign.budget else ""
        return (
            f"budget spent ({Money(left, currency)} was left before tonight, one reward "
            f"costs {cost}, {campaign_plan.selected:,} selected tonight)"
        )
    if reason == "max_per_run":
        return f"max_per_run ({campaign.max_per_run} per night) reached"
    return reason


def _cap_words(r: Rehearsal, pk: int) -> str:
    caps = r.campaign_set.policy.frequency_caps
    widest = max(cap.per_days for cap in caps)
    a = actions.c
    days = list(
        r.connection.execute(
            select(a.as_of).where(
                a.member_pk == pk,
                a.holdout == false(),
                a.state.in_(COUNTED_STATES),
                a.as_of >= r.as_of - timedelta(days=widest),
                a.as_of <= r.as_of,
            )
        ).scalars()
    )
    for cap in caps:
        since = r.as_of - timedelta(days=cap.per_days - 1)
        count = sum(1 for d in days if d >= since)
        if count >= cap.max:
            return f"{count} nudges in the last {cap.per_days} days"
    return "too many recent nudges"
