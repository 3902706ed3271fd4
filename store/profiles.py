"""The nightly profile refresh, in set-based SQL: stage, stage history, recency, RFM
quintiles and segment, engagement score, for every member at once.

One aggregate pass over ``events`` (shared by every stage rule through ``RuleCompiler``)
feeds one ``INSERT … SELECT`` into ``profiles``; stage history is then brought up to date
with three statements. Re-running a date rewinds history to before that date first, so the
same date always gives the same result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Date,
    Float,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from audience.lifecycle import Lifecycle, Scoring
from audience.rules import PURCHASE
from nudgeflow.timeutil import SECONDS_PER_DAY
from store.rulesql import RuleCompiler
from store.schema import events, members, profiles, stage_history

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement


@dataclass(frozen=True)
class RefreshResult:
    as_of: date
    members: int
    initial: bool  # the first refresh of this database: stages found, not moves


def _score(scoring: Scoring, as_of_end: int) -> ColumnElement[Any]:
    points = case(dict(scoring.points), value=events.c.type, else_=0.0)
    if scoring.expire_after_days is not None:
        oldest = as_of_end - scoring.expire_after_days * SECONDS_PER_DAY
        return func.sum(case((events.c.occurred_at >= oldest, points), else_=0.0))
    assert scoring.half_life_days is not None
    age_in_half_lives = cast(literal(as_of_end) - events.c.occurred_at, Float) / float(
        SECONDS_PER_DAY * scoring.half_life_days
    )
    return func.sum(points * func.power(0.5, age_in_half_lives))


def _quintile(has_purchase: ColumnElement[bool], value: Any, key: Any) -> ColumnElement[Any]:
    # Members who never bought get no RFM scores rather than the lowest ones. Ties are
    # broken by the member's key (an integer: cheaper to sort than member_id), so a re-run
    # ranks everyone identically.
    return case(
        (
            has_purchase,
            func.ntile(5).over(
                partition_by=case((has_purchase, 1), else_=0),
                order_by=(value, key),
            ),
        )
    )


def _profile_select(lifecycle: Lifecycle, as_of: date, as_of_end: int, currency: str) -> Any:
    compiler = RuleCompiler(as_of_end, as_of)
    stage = case(
        *[(compiler.predicate(s.rule), s.id) for s in reversed(lifecycle.stages)], else_=None
    )
    purchase = events.c.type == PURCHASE
    window_start = as_of_end - lifecycle.rfm.window_days * SECONDS_PER_DAY
    in_window = and_(purchase, events.c.occurred_at >= window_start)
    first = compiler.aggregate(func.min(case((purchase, events.c.occurred_at))), "first_p")
    last = compiler.aggregate(func.max(case((purchase, events.c.occurred_at))), "last_p")
    frequency = compiler.aggregate(func.sum(case((in_window, 1), else_=0)), "frequency")
    monetary = compiler.aggregate(
        func.sum(
            case((and_(in_window, events.c.currency == currency), events.c.amount_minor), else_=0)
        ),
        "monetary",
    )
    score = compiler.aggregate(_score(lifecycle.scoring, as_of_end), "score")

    base = (
        select(
            members.c.id.label("member_pk"),
            members.c.member_id,
            stage.label("stage"),
            first.label("first_purchase_at"),
            last.label("last_purchase_at"),
            func.coalesce(frequency, 0).label("frequency"),
            func.coalesce(monetary, 0).label("monetary_minor"),
            func.coalesce(score, 0.0).label("score"),
        )
        .select_from(compiler.from_clause())
        .subquery("base")
    )
    has_purchase = base.c.last_purchase_at.is_not(None)
    ranked = select(
        base,
        _quintile(has_purchase, base.c.last_purchase_at, base.c.member_pk).label("r"),
        _quintile(has_purchase, base.c.frequency, base.c.member_pk).label("f"),
        _quintile(has_purchase, base.c.monetary_minor, base.c.member_pk).label("m"),
    ).subquery("ranked")

    segment_whens = []
    for segment in lifecycle.rfm.segments:
        tests = [ranked.c.r.is_not(None)]
        for bounds, column in (
            (segment.r, ranked.c.r),
            (segment.f, ranked.c.f),
            (segment.m, ranked.c.m),
        ):
            if bounds is not None:
                tests.append(column.between(bounds[0], bounds[1]))
        segment_whens.append((and_(*tests), segment.name))
    segment_column = case(*segment_whens, else_=None) if segment_whens else literal(None)

    return select(
        ranked.c.member_pk,
        literal(as_of, Date).label("as_of"),
        ranked.c.stage,
        ranked.c.first_purchase_at,
        ranked.c.last_purchase_at,
        ((literal(as_of_end) - ranked.c.last_purchase_at) // SECONDS_PER_DAY).label("recency_days"),
        ranked.c.frequency,
        ranked.c.monetary_minor,
        literal(currency).label("currency"),
        ranked.c.r,
        ranked.c.f,
        ranked.c.m,
        segment_column.label("segment"),
        ranked.c.score,
    )


_PROFILE_COLUMNS = [
    "member_pk",
    "as_of",
    "stage",
    "first_purchase_at",
    "last_purchase_at",
    "recency_days",
    "frequency",
    "monetary_minor",
    "currency",
    "r",
    "f",
    "m",
    "segment",
    "score",
]


def _rewind_stage_history(connection: Connection, as_of: date) -> bool:
    """Forget what earlier runs of this date (or of later dates) recorded; return whether
    this is the first refresh of the database (no history left at all)."""
    h = stage_history
    connection.execute(delete(h).where(h.c.entered_on >= as_of))
    connection.execute(update(h).where(h.c.left_on >= as_of).values(left_on=None))
    return connection.execute(select(h.c.id).limit(1)).first() is None


def _with_stage_entry(profile: Any, as_of: date) -> Any:
    """The profile rows plus ``stage_entered_on``: the open history row's date when the
    member stays in its stage, else ``as_of`` (the history rows follow in a moment)."""
    rows = profile.subquery("profile")
    h = stage_history
    current = rows.outerjoin(h, (h.c.member_pk == rows.c.member_pk) & h.c.left_on.is_(None))
    entered = case(
        (rows.c.stage.is_(None), None),
        (h.c.stage == rows.c.stage, h.c.entered_on),
        else_=literal(as_of, Date),
    )
    return select(*(rows.c[name] for name in _PROFILE_COLUMNS), entered).select_from(current)


def _close_and_open_stages(connection: Connection, as_of: date, initial: bool) -> None:
    """Close the stages members left on ``as_of`` and open the ones they entered."""
    h = stage_history
    changed = exists().where(
        profiles.c.member_pk == h.c.member_pk, profiles.c.stage.is_distinct_from(h.c.stage)
    )
    connection.execute(update(h).where(h.c.left_on.is_(None), changed).values(left_on=as_of))
    still_open = exists().where(h.c.member_pk == profiles.c.member_pk, h.c.left_on.is_(None))
    connection.execute(
        insert(h).from_select(
            ["member_pk", "stage", "entered_on", "initial"],
            select(
                profiles.c.member_pk,
                profiles.c.stage,
                literal(as_of, Date),
                literal(initial),
            ).where(profiles.c.stage.is_not(None), ~still_open),
        )
    )


def refresh_profiles(
    connection: Connection, lifecycle: Lifecycle, as_of: date, as_of_end: int, currency: str
) -> RefreshResult:
    """Recompute every member's profile as of the end of business day ``as_of``.

    ``as_of_end`` is that instant in epoch seconds (the caller knows the time zone). Runs in
    the caller's transaction.
    """
    initial = _rewind_stage_history(connection, as_of)
    connection.execute(delete(profiles))
    profile = _profile_select(lifecycle, as_of, as_of_end, currency)
    connection.execute(
        insert(profiles).from_select(
            [*_PROFILE_COLUMNS, "stage_entered_on"], _with_stage_entry(profile, as_of)
        )
    )
    _close_and_open_stages(connection, as_of, initial)
    count = connection.execute(select(func.count()).select_from(profiles)).scalar_one()
    return RefreshResult(as_of, count, initial)


# --- reading the funnel -----------------------------------------------------------------


@dataclass(frozen=True)
class StageMove:
    from_stage: str | None
    to_stage: str | None
    members: int


def stage_counts(connection: Connection) -> dict[str | None, int]:
    rows = connection.execute(
        select(profiles.c.stage, func.count()).group_by(profiles.c.stage)
    ).all()
    return {stage: count for stage, count in rows}


def _stage_at(day: date) -> Any:
    h = stage_history
    return (
        select(h.c.stage)
        .where(
            h.c.member_pk == members.c.id,
            h.c.entered_on <= day,
            (h.c.left_on.is_(None)) | (h.c.left_on > day),
        )
        .scalar_subquery()
    )


def stage_moves(connection: Connection, since: date, until: date) -> list[StageMove]:
    """Net moves between the end of ``since`` and the end of ``until``: where each member
    stood on both days, for the members whose history changed in between."""
    h = stage_history
    touched = (
        select(h.c.member_pk)
        .where(
            ((h.c.entered_on > since) & (h.c.entered_on <= until) & ~h.c.initial)
            | ((h.c.left_on > since) & (h.c.left_on <= until))
        )
        .distinct()
        .subquery()
    )
    pairs = (
        select(_stage_at(since).label("from_stage"), _stage_at(until).label("to_stage"))
        .select_from(members.join(touched, touched.c.member_pk == members.c.id))
        .subquery()
    )
    rows = connection.execute(
        select(pairs.c.from_stage, pairs.c.to_stage, func.count())
        .where(pairs.c.from_stage.is_distinct_from(pairs.c.to_stage))
        .group_by(pairs.c.from_stage, pairs.c.to_stage)
    ).all()
    moves = [StageMove(f, t, n) for f, t, n in rows]
    return sorted(moves, key=lambda m: (-m.members, m.from_stage or "", m.to_stage or ""))


def member_stage_history(connection: Connection, member_pk: int) -> list[dict[str, Any]]:
    h = stage_history
    rows = connection.execute(
        select(h.c.stage, h.c.entered_on, h.c.left_on, h.c.initial)
        .where(h.c.member_pk == member_pk)
        .order_by(h.c.entered_on, h.c.id)
    ).all()
    return [dict(row._mapping) for row in rows]


def funnel(connection: Connection, as_of: date) -> dict[str, Any]:
    """Members per stage as of ``as_of`` and the moves since the previous completed night."""
    from store.runs import previous_completed_as_of

    previous = previous_completed_as_of(connection, as_of)
    moves = stage_moves(connection, previous, as_of) if previous else []
    return {
        "as_of": as_of.isoformat(),
        "previous_as_of": previous.isoformat() if previous else None,
        "stages": {stage or "": count for stage, count in stage_counts(connection).items()},
        "moves": [{"from": m.from_stage, "to": m.to_stage, "members": m.members} for m in moves],
    }
