"""The trigger rules in Python (pure): whether a campaign's trigger fires for one member on a
night, and in words why not.

``store.audience_sql`` selects the same members in SQL and shares the calendar here (which
birthdays and anniversaries fall on a business date, where an event trigger starts looking);
the property test ``tests/integration/store/test_rules_agree.py`` holds the two together, so a
change to the semantics here needs the same change there.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from audience.criteria import Audience
from audience.evaluate import evaluate
from audience.facts import EventFact, MemberFacts
from audience.rules import EventCount
from domain.campaign import Trigger
from nudgeflow.timeutil import business_date, day_end, day_start


@dataclass(frozen=True)
class TriggerFacts:
    """What triggers look at for one member (epoch seconds in UTC, as in the schema)."""

    joined_at: int | None
    first_purchase_at: int | None  # from the refreshed profile
    birth_month: int | None
    birth_day: int | None
    stage: str | None
    # The open stage row: when it began, and whether the first refresh found it (not a move).
    stage_entered_on: date | None
    stage_entry_initial: bool
    events: Sequence[EventFact]  # later events than the night's end are ignored
    previous_stage: str | None = None  # the stage left when the open one began, if any


@dataclass(frozen=True)
class TriggerNight:
    """The night a trigger is asked about."""

    as_of: date
    as_of_end: int  # the end of ``as_of`` in the business zone, epoch seconds
    previous_as_of: date | None  # the previous completed night, if any
    zone: ZoneInfo


def birthday_days(as_of: date) -> tuple[int, ...]:
    """Days of ``as_of``'s month whose birthdays fall on ``as_of``: Feb 29 birthdays are
    celebrated on Feb 28 in non-leap years."""
    if (as_of.month, as_of.day) == (2, 28) and not calendar.isleap(as_of.year):
        return (28, 29)
    return (as_of.day,)


def anniversary_days(as_of: date, year: int) -> list[date]:
    """The days of ``year`` whose anniversary falls on ``as_of`` (Feb 29 → Feb 28)."""
    month, day = as_of.month, as_of.day
    if (month, day) == (2, 29):
        return [date(year, 2, 29)] if calendar.isleap(year) else []
    days = [date(year, month, day)]
    if (month, day) == (2, 28) and not calendar.isleap(as_of.year) and calendar.isleap(year):
        days.append(date(year, 2, 29))
    return days


def event_window_start(as_of: date, previous_as_of: date | None, zone: ZoneInfo) -> int:
    """Where an event trigger starts looking: the end of the previous completed night, so
    nights that were skipped are caught up, or the start of ``as_of`` on the first run."""
    return day_end(previous_as_of, zone) if previous_as_of else day_start(as_of, zone)


def trigger_fires(
    trigger: Trigger, audience: Audience, member: TriggerFacts, night: TriggerNight
) -> bool:
    """Whether ``trigger`` fires for ``member`` on ``night``."""
    return trigger_miss(trigger, audience, member, night) is None


def trigger_miss(
    trigger: Trigger, audience: Audience, member: TriggerFacts, night: TriggerNight
) -> str | None:
    """``None`` when ``trigger`` fires for ``member`` on ``night``, else why not, in words."""
    as_of, end = night.as_of, night.as_of_end
    types = " or ".join(trigger.types)
    match trigger.kind:
        case "schedule":
            return None
        case "stage_entry":
            if audience.entered_within_days is not None:
                # entered_stage.within (in the audience) already asks for a recent real entry.
                return _direction_miss(trigger, member)
            entered, previous, stage = member.stage_entered_on, night.previous_as_of, member.stage
            if entered is None or member.stage_entry_initial:
                return f"{stage or 'no stage'} was found by the first run, not entered"
            if previous is None:
                if entered != as_of:
                    return f"entered {stage} on {entered}, not on {as_of} (no previous run)"
            elif entered <= previous:
                return f"entered {stage} on {entered}, before the previous run ({previous})"
            elif entered > as_of:
                return f"entered {stage} on {entered}, after {as_of}"
            return _direction_miss(trigger, member)
        case "event":
            start = event_window_start(as_of, night.previous_as_of, night.zone)
            if not any(
                e.type in trigger.types and start <= e.occurred_at < end for e in member.events
            ):
                return f"no {types} event since {business_date(start, night.zone)}"
            return None
        case "anniversary":
            of_join = trigger.of == "joined_at"
            instant = member.joined_at if of_join else member.first_purchase_at
            what = "joined" if of_join else "first purchased"
            if instant is None:
                return "the join date is unknown" if of_join else "has never purchased"
            day = business_date(instant, night.zone)
            years = as_of.year - day.year
            if day not in anniversary_days(as_of, day.year):
                return f"{what} on {day}: the anniversary is not today"
            if years < trigger.years:
                return f"{what} on {day}: {years} years ago, needs at least {trigger.years}"
            return None
        case "birthday":
            month, day_of_month = member.birth_month, member.birth_day
            if month is None or day_of_month is None:
                return "no birthday on file"
            if month != as_of.month or day_of_month not in birthday_days(as_of):
                return f"birthday is {month:02d}-{day_of_month:02d}, not today"
            return None
        case "inactivity":
            return _inactivity_miss(trigger, member, night)
    raise ValueError(f"unknown trigger {trigger.kind!r}")


def _inactivity_miss(trigger: Trigger, member: TriggerFacts, night: TriggerNight) -> str | None:
    """Inactivity is two rules of the audience language (and compiles to them in SQL): no
    such event within ``for_days``, and at least one ever."""
    assert trigger.for_days is not None
    facts = MemberFacts(member.joined_at, {}, frozenset(), member.events)
    end, types = night.as_of_end, " or ".join(trigger.types)
    if not evaluate(EventCount(trigger.types, min=1), facts, end):
        return f"has never had a {types} event"
    if not evaluate(EventCount(trigger.types, max=0, within_days=trigger.for_days), facts, end):
        times = (e.occurred_at for e in member.events if e.type in trigger.types)
        last = max(at for at in times if at < end)
        return (
            f"last {types} event on {business_date(last, night.zone)}, within the last "
            f"{trigger.for_days} days"
        )
    return None


def stage_move(order: Sequence[str], previous: str | None, stage: str | None) -> str:
    """``up`` (from a lower stage, or from none), ``down`` (from a higher one) or ``same``
    (stages the order does not rank apart), by the lifecycle's ``order`` (low to high)."""
    if previous is None:
        return "up"
    rank = {name: index for index, name in enumerate(order)}
    here, before = rank.get(stage or "", -1), rank.get(previous, -1)
    return "up" if here > before else "down" if here < before else "same"


def _direction_miss(trigger: Trigger, member: TriggerFacts) -> str | None:
    """Why a stage entry does not fire for its direction (``None`` when it does)."""
    if trigger.direction == "any" or not trigger.stage_order:
        return None  # without the lifecycle's order no move is up or down: any counts
    move = stage_move(trigger.stage_order, member.previous_stage, member.stage)
    if move == trigger.direction:
        return None
    came = f"from {member.previous_stage}" if member.previous_stage else "from no stage"
    return (
        f"entered {member.stage} {came}: a move {move}, and the campaign fires on moves "
        f"{trigger.direction}"
    )
