"""Tonight's candidates and the guard facts about them, set-based.

``select_candidates`` is one query for every enabled campaign: ``members`` joined to
``profiles`` and to the member's open ``stage_history`` row, with one 0/1 column per campaign
(audience AND trigger). Every event condition of every audience shares one aggregate pass
over ``events`` (``store.rulesql.RuleCompiler``). ``gather_guards`` then reads, in a handful
of queries over whole tables, what the pure planner needs to apply its guards, and
``StoredBudgets`` says what each budget has left. No query runs per member.

The profile criteria here must mean exactly what ``audience.criteria.explain_profile`` says,
and the triggers what ``cli.plan`` words for ``nudgeflow why``.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    Select,
    and_,
    case,
    false,
    func,
    or_,
    select,
    true,
)

from audience.criteria import Audience, ProfileFacts
from audience.facts import EventFact, MemberFacts
from audience.rules import MEMBER_FIELDS, PURCHASE, AllOf, AnyOf, EventCount, Not, Rule, Spend
from domain.campaign import Campaign, Policy, Trigger
from domain.keys import occurrence_for
from domain.plan import MemberState, PriorAction
from nudgeflow.timeutil import SECONDS_PER_DAY, day_end, day_start, from_epoch
from store.consent import standing_withdrawals
from store.rulesql import RuleCompiler
from store.schema import actions, events, member_tags, members, profiles, stage_history

# Action states that count as a nudge for frequency caps and fatigue: everything that is or
# may become an email. Held-out and failed actions never reach the member.
COUNTED_STATES = ("planned", "reserved", "reward_issued", "sending", "sent", "unknown")
SYSTEM = "system"
# Up to this many member keys are sent to the database as IN lists; above it one scan of the
# table filtered in Python is cheaper than thousands of bound parameters.
_IN_LIST_LIMIT = 2_000
_CHUNK = 500
# Above this share of the events table, one sequential scan beats walking an index.
_INDEX_SHARE = 0.1

# The member's open stage row: "initial" tells a real entry from the first refresh's finding.
open_stage = stage_history.alias("open_stage")


# --- candidates ---------------------------------------------------------------------------


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
    conditions = [
        and_(
            profile_criteria(campaign.audience, as_of, as_of_end),
            compiler.predicate(campaign.audience.rule),
            _trigger(
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
    for row in connection.execute(query).all():
        member_pk = row[0]
        for members_of, flag in zip(lists, row[1:], strict=True):
            if flag:
                members_of.append(member_pk)
    return found


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


def event_window_start(as_of: date, previous_as_of: date | None, zone: ZoneInfo) -> int:
    """Where an event trigger starts looking: the end of the previous completed night, so
    nights that were skipped are caught up, or the start of ``as_of`` on the first run."""
    return day_end(previous_as_of, zone) if previous_as_of else day_start(as_of, zone)


def _trigger(
    connection: Connection,
    compiler: RuleCompiler,
    audience: Audience,
    trigger: Trigger,
    as_of: date,
    as_of_end: int,
    previous_as_of: date | None,
    zone: ZoneInfo,
) -> ColumnElement[bool]:
    match trigger.kind:
        case "schedule":
            return true()
        case "stage_entry":
            if audience.entered_within_days is not None:
                # entered_stage.within (in the audience) already asks for a recent real entry.
                return true()
            if previous_as_of is not None:
                since = and_(
                    open_stage.c.entered_on > previous_as_of, open_stage.c.entered_on <= as_of
                )
            else:
                since = open_stage.c.entered_on == as_of
            return and_(_real_entry(), since)
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


# --- guards -----------------------------------------------------------------------------


def _restricted(
    query: Select[Any], column: ColumnElement[int], wanted: set[int]
) -> Iterable[Select[Any]]:
    """``query`` limited to ``wanted`` member keys: IN lists for a few, else the whole table
    (the caller filters in Python)."""
    if len(wanted) > _IN_LIST_LIMIT:
        yield query
        return
    keys = sorted(wanted)
    for start in range(0, len(keys), _CHUNK):
        yield query.where(column.in_(keys[start : start + _CHUNK]))


def _raw_rows(connection: Connection, query: Select[Any]) -> list[Any]:
    """The DBAPI rows of ``query``, skipping SQLAlchemy's Row objects and result processing.

    Guard facts read up to a few million rows a night; building a ``Row`` for each cost more
    than the queries (8.7 s of 22 s at 1 M members). Callers convert what they keep:
    ``_day`` for dates (text on SQLite), ``bool`` for booleans (0/1 on SQLite).
    """
    result = connection.execute(query)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def fatigue_tag_active(policy: Policy, as_of: date) -> ColumnElement[bool]:
    """A rest is active on ``as_of`` from the night after it was set (the tag is written
    after that night's plan) until ``expires_on`` inclusive."""
    return and_(
        member_tags.c.tag == policy.fatigue_tag,
        member_tags.c.source == SYSTEM,
        or_(member_tags.c.added_on.is_(None), member_tags.c.added_on < as_of),
        or_(member_tags.c.expires_on.is_(None), member_tags.c.expires_on >= as_of),
    )


def gather_guards(
    connection: Connection,
    campaigns: Sequence[Campaign],
    candidates: Mapping[str, Sequence[int]],
    policy: Policy,
    as_of: date,
    as_of_end: int,
) -> tuple[dict[int, MemberState], dict[str, dict[int, list[PriorAction]]]]:
    """Guard facts for every candidate and their earlier actions per campaign."""
    wanted: set[int] = set()
    for keys in candidates.values():
        wanted.update(keys)
    if not wanted:
        return {}, {c: {} for c in candidates}

    # No DISTINCT: SQLite would walk the member_pk index over every event to provide it,
    # instead of the (type, occurred_at) index over these few; the set removes duplicates.
    # Withdrawals standing at the night's end: no consent_restored event came after them.
    withdrawn = {row[0] for row in _raw_rows(connection, standing_withdrawals(as_of_end))}
    resting = set(
        connection.execute(
            select(member_tags.c.member_pk).where(fatigue_tag_active(policy, as_of))
        ).scalars()
    )

    sends_on: dict[int, list[date]] = defaultdict(list)
    tonight: set[int] = set()
    widest = max((cap.per_days for cap in policy.frequency_caps), default=0)
    a = actions.c
    recent = select(a.member_pk, a.as_of, a.holdout, a.state).where(
        a.as_of >= as_of - timedelta(days=widest), a.as_of <= as_of
    )
    for query in _restricted(recent, a.member_pk, wanted):
        for pk, raw_day, holdout, state in _raw_rows(connection, query):
            if pk not in wanted:
                continue
            day = _day(raw_day)
            if day == as_of:
                tonight.add(pk)
            if widest and not holdout and state in COUNTED_STATES:
                sends_on[pk].append(day)

    states: dict[int, MemberState] = {}
    base = select(members.c.id, members.c.member_id, members.c.email_opt_in)
    for query in _restricted(base, members.c.id, wanted):
        for pk, member_id, opt_in in _raw_rows(connection, query):
            if pk in wanted:
                sent = sends_on.get(pk)
                states[pk] = MemberState(
                    member_id,
                    bool(opt_in) and pk not in withdrawn,
                    pk in resting,
                    tuple(sorted(sent)) if sent else (),
                    pk in tonight,
                )
    return states, _prior_actions(connection, campaigns, candidates, as_of)


def _prior_actions(
    connection: Connection,
    campaigns: Sequence[Campaign],
    candidates: Mapping[str, Sequence[int]],
    as_of: date,
) -> dict[str, dict[int, list[PriorAction]]]:
    """Earlier actions (any state) of each campaign for its candidates, up to ``as_of``
    (per member in no particular order)."""
    prior: dict[str, dict[int, list[PriorAction]]] = {c: {} for c in candidates}
    by_id = {c.id: c for c in campaigns if c.id in candidates}
    if not by_id:
        return prior
    a = actions.c
    windows = []
    for campaign in by_id.values():
        test = a.campaign_id == campaign.id
        if campaign.occurrence_kind == "date":
            # Date occurrences only matter inside the cooldown (or tonight without one).
            oldest = as_of - timedelta(days=campaign.cooldown_days or 0)
            test = and_(test, a.as_of >= oldest)
        elif campaign.occurrence_kind == "year":
            # Earlier years' birthdays and anniversaries say nothing about this year's.
            test = and_(
                test, or_(a.occurrence == occurrence_for(campaign, as_of), a.as_of == as_of)
            )
        windows.append(test)
    query = select(a.campaign_id, a.member_pk, a.occurrence, a.as_of).where(
        or_(*windows), a.as_of <= as_of
    )
    wanted = {c: set(candidates[c]) for c in by_id}
    everyone: set[int] = set().union(*wanted.values())
    for chunk in _restricted(query, a.member_pk, everyone):
        for campaign_id, pk, occurrence, raw_day in _raw_rows(connection, chunk):
            # Tonight's actions of members who are no longer candidates still use up the
            # campaign's max_per_run (the planner counts them); other rows are not needed.
            if pk in wanted[campaign_id]:
                day = _day(raw_day)
            elif (day := _day(raw_day)) != as_of:
                continue
            prior[campaign_id].setdefault(pk, []).append(PriorAction(occurrence, day))
    # In no particular order: the planner asks "any such action?", and sorting a million
    # short lists costs seconds a night.
    return prior


# --- budgets ----------------------------------------------------------------------------


class StoredBudgets:
    """``domain.plan.Budgets`` read from the stored actions until the ledger exists: what
    is left of each campaign's total and of this business month's allowance, in minor units
    of the budget's currency (the cost of every non-held-out, non-failed action counts)."""

    def __init__(self, connection: Connection, campaigns: Sequence[Campaign], as_of: date) -> None:
        self._remaining: dict[str, int] = {}
        budgeted = {c.id: c.budget for c in campaigns if c.budget is not None}
        if not budgeted:
            return
        month_start = as_of.replace(day=1)
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        a = actions.c
        in_month = and_(a.as_of >= month_start, a.as_of < next_month)
        rows = connection.execute(
            select(
                a.campaign_id,
                func.coalesce(func.sum(a.cost_minor), 0),
                func.coalesce(func.sum(case((in_month, a.cost_minor), else_=0)), 0),
            )
            .where(
                a.campaign_id.in_(sorted(budgeted)),
                a.holdout == false(),
                a.state.not_in(("failed", "held_out")),
            )
            .group_by(a.campaign_id)
        ).all()
        spent = {campaign_id: (int(total), int(month)) for campaign_id, total, month in rows}
        for campaign_id, budget in budgeted.items():
            total, month = spent.get(campaign_id, (0, 0))
            left = []
            if budget.total is not None:
                left.append(budget.total.amount_minor - total)
            if budget.per_month is not None:
                left.append(budget.per_month.amount_minor - month)
            self._remaining[campaign_id] = max(0, min(left))

    def remaining(self, campaign_id: str) -> int | None:
        return self._remaining.get(campaign_id)


# --- one member's facts (``nudgeflow why``) ---------------------------------------------


def member_facts(
    connection: Connection, member_pk: int, as_of: date, as_of_end: int
) -> MemberFacts:
    """What the pure rule evaluator needs about one member, as of the end of ``as_of``:
    the same view of the tables that ``RuleCompiler`` compiles rules against."""
    row = connection.execute(select(members).where(members.c.id == member_pk)).mappings().one()
    fields = {name: row[name] for name in MEMBER_FIELDS if row[name] is not None}
    for name, value in (row["attributes"] or {}).items():
        if value is not None:
            fields.setdefault(name, str(value))
    tags = connection.execute(
        select(member_tags.c.tag).where(
            member_tags.c.member_pk == member_pk,
            or_(member_tags.c.expires_on.is_(None), member_tags.c.expires_on >= as_of),
        )
    ).scalars()
    history = connection.execute(
        select(events.c.type, events.c.occurred_at, events.c.amount_minor, events.c.currency)
        .where(events.c.member_pk == member_pk, events.c.occurred_at < as_of_end)
        .order_by(events.c.occurred_at, events.c.id)
    ).all()
    return MemberFacts(
        joined_at=row["joined_at"],
        fields=fields,
        tags=frozenset(tags),
        events=tuple(EventFact(t, int(at), minor, currency) for t, at, minor, currency in history),
    )


def profile_facts(connection: Connection, member_pk: int) -> ProfileFacts | None:
    """The member's refreshed profile and open stage row, or ``None`` without a profile."""
    row = connection.execute(
        select(
            profiles.c.stage,
            open_stage.c.entered_on,
            open_stage.c.initial,
            profiles.c.last_purchase_at,
            profiles.c.segment,
            profiles.c.score,
        )
        .select_from(
            profiles.outerjoin(
                open_stage,
                and_(
                    open_stage.c.member_pk == profiles.c.member_pk, open_stage.c.left_on.is_(None)
                ),
            )
        )
        .where(profiles.c.member_pk == member_pk)
    ).first()
    if row is None:
        return None
    stage, entered_on, initial, last_purchase_at, segment, score = row
    return ProfileFacts(
        stage=stage,
        stage_entered_on=entered_on,
        stage_entry_initial=bool(initial),
        last_purchase_at=last_purchase_at,
        segment=segment,
        score=float(score),
    )
