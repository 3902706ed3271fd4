"""Tonight's candidates, set-based: the audiences and triggers of every campaign in SQL.

``select_candidates`` is one query for every enabled campaign: ``members`` joined to
``profiles`` and to the member's open ``stage_history`` row, with one 0/1 column per campaign
(audience AND trigger). Every event condition of every audience shares one aggregate pass
over ``events`` (``store.rulesql.RuleCompiler``). No query runs per member.

The profile criteria here must mean exactly what ``audience.criteria.explain_profile`` says,
and the triggers what ``domain.triggers`` says (``tests/integration/store/test_rules_agree.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    and_,
    case,
    false,
    func,
    or_,
    select,
    true,
)

from audience.criteria import Audience
from audience.rules import PURCHASE, AllOf, AnyOf, EventCount, Not, Rule, Spend
from domain.campaign import Campaign, Trigger
from domain.triggers import anniversary_days, birthday_days, event_window_start
from nudgeflow.timeutil import SECONDS_PER_DAY, day_end, day_start, from_epoch
from store.pathways_sql import Night, target_condition
from store.rulesql import RuleCompiler
from store.schema import events, members, profiles, stage_history

# Above this share of the events table, one sequential scan beats walking an index.
_INDEX_SHARE = 0.1

# The member's open stage row: "initial" tells a real entry from the first refresh's finding.
open_stage = stage_history.alias("open_stage")


def select_candidates(
    connection: Connection,
    campaigns: Sequence[Campaign],
    as_of: date,
    as_of_end: int,
    previous_as_of: date | None,
    zone: ZoneInfo,
) -> dict[str, list[int]]:
    """campaign id → member_pks (ascending) matching its audience and trigger tonight, for
    every enabled campaign. Reads the profiles of the refresh for ``as_of``."""
    enabled = [c for c in campaigns if c.enabled]
    found: dict[str, list[int]] = {c.id: [] for c in enabled}
    if not enabled:
        return found
    compiler = RuleCompiler(as_of_end, as_of)
    targeted = any(c.audience.pathway is not None for c in enabled)
    night = Night.of(connection, as_of, as_of_end, zone) if targeted else None
    conditions = [
        and_(
            profile_criteria(campaign.audience, as_of, as_of_end),
            _pathway_criterion(connection, campaign.audience, night),
            compiler.predicate(campaign.audience.rule),
            trigger_condition(
                connection,
                compiler,
                campaign.audience,
                campaign.trigger,
                as_of,
                as_of_end,
                previous_as_of,
                zone,
            ),
        )
        for campaign in enabled
    ]
    _prefer_full_scan(connection, compiler, enabled, as_of_end)
    # CASE keeps every flag 0/1 on both databases (a NULL anywhere in a conjunction reads
    # as "no"). The flags are computed once in a subquery and the rows no campaign wants are
    # dropped on their sum: repeating the conditions in WHERE would evaluate them twice.
    flags = [case((condition, 1), else_=0).label(f"f{i}") for i, condition in enumerate(conditions)]
    inner = select(members.c.id.label("member_pk"), *flags).select_from(candidate_from(compiler))
    flagged = inner.subquery("flagged")
    wanted = sum((flagged.c[f"f{i}"] for i in range(1, len(flags))), start=flagged.c.f0)
    query = select(flagged).where(wanted > 0).order_by(flagged.c.member_pk)
    lists = [found[c.id] for c in enabled]
    # Streamed (a server-side cursor on PostgreSQL): a million rows of twenty flags would
    # otherwise be held at once next to the lists they fill.
    rows = connection.execute(query, execution_options={"yield_per": 10_000})
    for row in rows:
        member_pk = row[0]
        for members_of, flag in zip(lists, row[1:], strict=True):
            if flag:
                members_of.append(member_pk)
    return found


def _pathway_criterion(
    connection: Connection, audience: Audience, night: Night | None
) -> ColumnElement[bool]:
    """``audience.pathway``: the member is at the targeted position (``store.pathways_sql``)."""
    if audience.pathway is None or night is None:
        return true()
    return target_condition(connection, audience.pathway, night)


def _event_windows(rule: Rule) -> Iterator[tuple[tuple[str, ...], int | None]]:
    """(event types, window in days or None) of every event condition in ``rule``."""
    match rule:
        case EventCount(types=types, within_days=days):
            yield types, days
        case Spend(within_days=days):
            yield (PURCHASE,), days
        case AllOf(rules=rules) | AnyOf(rules=rules):
            for inner in rules:
                yield from _event_windows(inner)
        case Not(rule=inner):
            yield from _event_windows(inner)


def _prefer_full_scan(
    connection: Connection, compiler: RuleCompiler, campaigns: Sequence[Campaign], as_of_end: int
) -> None:
    """On SQLite, make the aggregate pass scan ``events`` when its filter keeps many rows.

    The pass filters on the rules' event types (and windows), which SQLite answers through
    ``ix_events_type_occurred_at``: one random table read per matching event. For a few
    rare events that is best; when twenty campaigns name the common types it reads most of
    the table in random order (7x slower than one sequential scan, measured at 100 k members:
    4.3 s against 0.6 s). An index-only count of the matching rows, compared with the table
    size, decides; registering an aggregate of its own makes the pass scan every row.
    """
    if connection.dialect.name != "sqlite":
        return  # PostgreSQL's planner weighs this with its own statistics
    windows = [w for c in campaigns for w in _event_windows(c.audience.rule)]
    windows += [(c.trigger.types, None) for c in campaigns if c.trigger.kind == "inactivity"]
    if not windows:
        return
    types = sorted({t for kinds, _ in windows for t in kinds})
    lows = [days for _, days in windows]
    where = [events.c.type.in_(types), events.c.occurred_at < as_of_end]
    if None not in lows:
        longest = max(days for days in lows if days is not None)
        where.append(events.c.occurred_at >= as_of_end - longest * SECONDS_PER_DAY)
    # Integer primary key: max(id) is one index probe and close enough to the row count.
    total = connection.execute(select(func.max(events.c.id))).scalar() or 0
    matching = connection.execute(select(func.count()).where(*where)).scalar_one()
    if matching > total * _INDEX_SHARE:
        compiler.aggregate(func.count(), "events_seen")


def candidate_from(compiler: RuleCompiler) -> FromClause:
    """``members`` (plus the aggregate pass) ⋈ ``profiles`` ⟕ the open stage row."""
    return (
        compiler.from_clause()
        .join(profiles, profiles.c.member_pk == members.c.id)
        .outerjoin(
            open_stage,
            and_(open_stage.c.member_pk == members.c.id, open_stage.c.left_on.is_(None)),
        )
    )


def profile_criteria(audience: Audience, as_of: date, as_of_end: int) -> ColumnElement[bool]:
    """The audience's profile criteria, meaning what ``explain_profile`` says they mean."""
    parts: list[ColumnElement[bool]] = []
    if audience.stages is not None:
        parts.append(_is_in(profiles.c.stage, audience.stages))
    if audience.entered_within_days is not None:
        # (as_of - entered).days < N, and a real move rather than the first refresh's finding.
        parts.append(_real_entry())
        parts.append(open_stage.c.entered_on > as_of - timedelta(days=audience.entered_within_days))
    if audience.last_purchase_within_days is not None:
        oldest = as_of_end - audience.last_purchase_within_days * SECONDS_PER_DAY
        parts.append(profiles.c.last_purchase_at.is_not(None))
        parts.append(profiles.c.last_purchase_at >= oldest)
    if audience.segments is not None:
        parts.append(_is_in(profiles.c.segment, audience.segments))
    if audience.score_min is not None:
        parts.append(profiles.c.score >= audience.score_min)
    if audience.score_max is not None:
        parts.append(profiles.c.score <= audience.score_max)
    return and_(*parts) if parts else true()


def _is_in(column: ColumnElement[Any], values: Sequence[str]) -> ColumnElement[bool]:
    return and_(column.is_not(None), column.in_(values)) if values else false()


def _real_entry() -> ColumnElement[bool]:
    return and_(open_stage.c.id.is_not(None), open_stage.c.initial == false())


def left_stage() -> Any:
    """The stage a member left when their open stage began (``None``: they came from no
    stage), correlated to ``open_stage`` and found by the (member_pk, left_on) index."""
    left = stage_history.alias("left_stage")
    return (
        select(left.c.stage)
        .where(
            left.c.member_pk == open_stage.c.member_pk, left.c.left_on == open_stage.c.entered_on
        )
        .limit(1)
        .scalar_subquery()
    )


def _moved(trigger: Trigger) -> ColumnElement[bool]:
    """Whether the move into the open stage goes the trigger's way (``domain.triggers.
    stage_move``): up from a lower stage or from none, down from a higher one, or any."""
    if trigger.direction == "any" or not trigger.stage_order:
        return true()  # without the lifecycle's order no move is up or down: any counts
    ranks = {stage: rank for rank, stage in enumerate(trigger.stage_order)}

    def rank(expression: Any) -> Any:
        return case(ranks, value=expression, else_=-1)

    left = left_stage()
    if trigger.direction == "down":
        return and_(left.is_not(None), rank(open_stage.c.stage) < rank(left))
    return or_(left.is_(None), rank(open_stage.c.stage) > rank(left))


def trigger_condition(
    connection: Connection,
    compiler: RuleCompiler,
    audience: Audience,
    trigger: Trigger,
    as_of: date,
    as_of_end: int,
    previous_as_of: date | None,
    zone: ZoneInfo,
) -> ColumnElement[bool]:
    """Whether ``trigger`` fires tonight, over the tables of ``candidate_from``: what
    ``domain.triggers.trigger_fires`` answers for one member."""
    match trigger.kind:
        case "schedule":
            return true()
        case "stage_entry":
            if audience.entered_within_days is not None:
                # entered_stage.within (in the audience) already asks for a recent real entry.
                return _moved(trigger)
            if previous_as_of is not None:
                since = and_(
                    open_stage.c.entered_on > previous_as_of, open_stage.c.entered_on <= as_of
                )
            else:
                since = open_stage.c.entered_on == as_of
            return and_(_real_entry(), since, _moved(trigger))
        case "event":
            start = event_window_start(as_of, previous_as_of, zone)
            # Non-correlated IN: the (type, occurred_at) index finds tonight's few events once.
            fired = select(events.c.member_pk).where(
                events.c.type.in_(trigger.types),
                events.c.occurred_at >= start,
                events.c.occurred_at < as_of_end,
            )
            return members.c.id.in_(fired)
        case "anniversary":
            column = (
                members.c.joined_at if trigger.of == "joined_at" else profiles.c.first_purchase_at
            )
            table = members if trigger.of == "joined_at" else profiles
            earliest = connection.execute(select(func.min(column)).select_from(table)).scalar()
            if earliest is None:
                return false()
            # A year early: the business zone may put the earliest instant a day earlier.
            first_year = from_epoch(int(earliest)).year - 1
            intervals = anniversary_intervals(as_of, trigger.years, first_year, zone)
            if not intervals:
                return false()
            return and_(
                column.is_not(None),
                or_(*(and_(column >= low, column < high) for low, high in intervals)),
            )
        case "birthday":
            days = birthday_days(as_of)
            return and_(
                members.c.birth_month == as_of.month,
                members.c.birth_day.in_(days) if len(days) > 1 else members.c.birth_day == days[0],
            )
        case "inactivity":
            assert trigger.for_days is not None
            quiet = compiler.predicate(
                EventCount(trigger.types, max=0, within_days=trigger.for_days)
            )
            active_once = compiler.predicate(EventCount(trigger.types, min=1))
            return and_(quiet, active_once)
    raise ValueError(f"unknown trigger {trigger.kind!r}")


def anniversary_intervals(
    as_of: date, years: int, first_year: int, zone: ZoneInfo
) -> list[tuple[int, int]]:
    """UTC instants ``[start, end)`` of the business days (in ``zone``, DST included) whose
    anniversary of at least ``years`` years is ``as_of``; adjacent days are merged."""
    intervals: list[tuple[int, int]] = []
    for year in range(max(first_year, 1), as_of.year - years + 1):
        for day in anniversary_days(as_of, year):
            low, high = day_start(day, zone), day_end(day, zone)
            if intervals and intervals[-1][1] == low:
                intervals[-1] = (intervals[-1][0], high)
            else:
                intervals.append((low, high))
    return intervals
