"""Pathways in SQL, set-based: where every member stands on a pathway, its figures, and the
``audience.pathway`` criterion of candidate selection.

One *position* query per pathway (``position_query``): a row per member who reached the
start, with the instant of the start, of each key action and of the end (``NULL``: not
reached). A step is reached (``audience.pathways``):

* ``events`` (the ``min``-th event of the types): ``ROW_NUMBER`` over the member's matching
  events, ordered by time, picks the instant of the ``min``-th one (after the start for the
  key actions and the end);
* ``stage`` (the stage or one above it): the first ``stage_history`` entry, whose business
  day is turned into the instant it began in the business time zone (``_day_start``).

The figures (``progress``, ``indicator``) and the candidate criterion (``target_condition``)
aggregate that query; ``position_of`` reads one member's row for ``nudgeflow why``. No query
runs per member.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    select,
)

from audience.pathways import Pathway, PathwayPosition, PathwayTarget, Step
from nudgeflow.timeutil import SECONDS_PER_DAY, day_start
from store.schema import events, members, stage_history

# --- business days as instants ------------------------------------------------------------


@dataclass(frozen=True)
class DayClock:
    """Turns a ``Date`` column into the instant its business day begins in ``zone``: UTC
    midnight in SQL, less the zone's offset, which changes only at the few DST transitions
    between ``first`` and ``last`` (a ``CASE`` over them)."""

    zone: ZoneInfo
    first: date
    last: date

    @classmethod
    def for_history(cls, connection: Connection, zone: ZoneInfo, as_of: date) -> DayClock:
        earliest = connection.execute(select(func.min(stage_history.c.entered_on))).scalar()
        first = earliest if isinstance(earliest, date) else as_of
        return cls(zone, min(first, as_of), as_of)

    def _offsets(self) -> list[tuple[date, int]]:
        """(first day, seconds to subtract from UTC midnight) of each run of equal offsets."""
        runs: list[tuple[date, int]] = []
        day = self.first
        while day <= self.last + timedelta(days=1):
            utc_midnight = (day - date(1970, 1, 1)).days * SECONDS_PER_DAY
            offset = utc_midnight - day_start(day, self.zone)
            if not runs or runs[-1][1] != offset:
                runs.append((day, offset))
            day += timedelta(days=1)
        return runs

    def start_of(self, connection: Connection, column: Any) -> ColumnElement[int]:
        if connection.dialect.name == "sqlite":
            utc: Any = cast(func.strftime("%s", column), BigInteger)
        else:
            utc = cast(func.extract("epoch", column), BigInteger)
        runs = self._offsets()
        if len(runs) == 1:
            return utc - runs[0][1]  # type: ignore[no-any-return]
        whens = [
            (column < runs[i + 1][0], literal(offset)) for i, (_, offset) in enumerate(runs[:-1])
        ]
        return utc - case(*whens, else_=literal(runs[-1][1]))  # type: ignore[no-any-return]


# --- the position query ------------------------------------------------------------------


@dataclass(frozen=True)
class Night:
    """What a position is computed as of: the business day, the instant it ends, and the
    clock for stage entries."""

    as_of: date
    as_of_end: int
    clock: DayClock

    @classmethod
    def of(cls, connection: Connection, as_of: date, as_of_end: int, zone: ZoneInfo) -> Night:
        return cls(as_of, as_of_end, DayClock.for_history(connection, zone, as_of))


def _start(connection: Connection, step: Step, night: Night, member_pk: int | None) -> CTE:
    if step.stage is not None:
        sh = stage_history
        first = (
            select(sh.c.member_pk, func.min(sh.c.entered_on).label("entered_on"))
            .where(sh.c.stage.in_(step.stages), sh.c.entered_on <= night.as_of)
            .group_by(sh.c.member_pk)
        )
        if member_pk is not None:
            first = first.where(sh.c.member_pk == member_pk)
        entered = first.subquery("first_entry")
        started = night.clock.start_of(connection, entered.c.entered_on)
        return select(entered.c.member_pk, started.label("started_at")).cte("started")
    ranked = select(
        events.c.member_pk,
        events.c.occurred_at,
        func.row_number()
        .over(partition_by=events.c.member_pk, order_by=(events.c.occurred_at, events.c.id))
        .label("rn"),
    ).where(events.c.type.in_(step.types), events.c.occurred_at < night.as_of_end)
    if member_pk is not None:
        ranked = ranked.where(events.c.member_pk == member_pk)
    nth = ranked.subquery("start_events")
    return (
        select(nth.c.member_pk, nth.c.occurred_at.label("started_at"))
        .where(nth.c.rn == step.min)
        .cte("started")
    )


def _after(connection: Connection, step: Step, start: CTE, night: Night, name: str) -> Any:
    """(member_pk, at): when each started member reached ``step`` since their start."""
    if step.stage is not None:
        sh = stage_history
        day = night.clock.start_of(connection, sh.c.entered_on)
        first = (
            select(sh.c.member_pk, func.min(sh.c.entered_on).label("entered_on"))
            .select_from(sh.join(start, start.c.member_pk == sh.c.member_pk))
            .where(
                sh.c.stage.in_(step.stages),
                sh.c.entered_on <= night.as_of,
                day + SECONDS_PER_DAY > start.c.started_at,  # on or after the start's day
            )
            .group_by(sh.c.member_pk)
            .subquery(f"{name}_entry")
        )
        reached = night.clock.start_of(connection, first.c.entered_on)
        return select(first.c.member_pk, reached.label("at")).subquery(name)
    ranked = (
        select(
            events.c.member_pk,
            events.c.occurred_at,
            func.row_number()
            .over(partition_by=events.c.member_pk, order_by=(events.c.occurred_at, events.c.id))
            .label("rn"),
        )
        .select_from(events.join(start, start.c.member_pk == events.c.member_pk))
        .where(
            events.c.type.in_(step.types),
            events.c.occurred_at >= start.c.started_at,
            events.c.occurred_at < night.as_of_end,
        )
        .subquery(f"{name}_events")
    )
    return (
        select(ranked.c.member_pk, ranked.c.occurred_at.label("at"))
        .where(ranked.c.rn == step.min)
        .subquery(name)
    )


def position_query(
    connection: Connection,
    pathway: Pathway,
    night: Night,
    *,
    actions: Sequence[str] | None = None,
    member_pk: int | None = None,
) -> Select[Any]:
    """A row per member who started ``pathway``: ``member_pk``, ``started_at``, one column
    per key action (``a0``, ``a1``, … in the pathway's order; only ``actions`` when given)
    and ``ended_at``: instants, ``NULL`` when not reached. A step reached on the start's own
    business day before the start counts at the start (never a negative duration)."""
    start = _start(connection, pathway.start, night, member_pk)
    columns: list[Any] = [start.c.member_pk, start.c.started_at]
    joined: Any = start
    for index, action in enumerate(pathway.key_actions):
        if actions is not None and action.id not in actions:
            continue
        reached = _after(connection, action.step, start, night, f"a{index}")
        joined = joined.outerjoin(reached, reached.c.member_pk == start.c.member_pk)
        columns.append(_not_before(reached.c.at, start.c.started_at).label(f"a{index}"))
    end = _after(connection, pathway.end, start, night, "reached_end")
    joined = joined.outerjoin(end, end.c.member_pk == start.c.member_pk)
    columns.append(_not_before(end.c.at, start.c.started_at).label("ended_at"))
    return select(*columns).select_from(joined)


def _not_before(at: Any, started_at: Any) -> Any:
    return case((at < started_at, started_at), else_=at)


# --- figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    started: int
    completed: tuple[int, ...]  # per key action, in the pathway's order
    ended: int
    median_days_to_end: float | None


def progress(connection: Connection, pathway: Pathway, night: Night) -> Progress:
    """How many started, completed each key action, and reached the end; the median time
    from start to end (over the members who reached it), all in two queries."""
    position = position_query(connection, pathway, night).subquery("position")
    n = len(pathway.key_actions)
    counts = select(
        func.count(),
        *(func.count(position.c[f"a{i}"]) for i in range(n)),
        func.count(position.c.ended_at),
    )
    row = connection.execute(counts).one()
    duration = (position.c.ended_at - position.c.started_at).label("d")
    ranked = (
        select(
            duration,
            func.row_number().over(order_by=duration).label("rn"),
            func.count().over().label("n"),
        )
        .where(position.c.ended_at.is_not(None))
        .subquery("durations")
    )
    middle = select(func.avg(ranked.c.d)).where(
        ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2])
    )
    median = connection.execute(middle).scalar()
    days = None if median is None else round(float(median) / SECONDS_PER_DAY, 2)
    return Progress(int(row[0]), tuple(int(c) for c in row[1 : n + 1]), int(row[n + 1]), days)


@dataclass(frozen=True)
class IndicatorSums:
    """An indicator's total over the members on the pathway (started it) and off it:
    events counted, or members with at least one (retention)."""

    members_on: int
    total_on: int
    members_off: int
    total_off: int


def indicator_sums(
    connection: Connection,
    pathway: Pathway,
    night: Night,
    types: Sequence[str],
    within_days: int | None,
    retention: bool,
) -> IndicatorSums:
    where = [events.c.type.in_(types), events.c.occurred_at < night.as_of_end]
    if within_days is not None:
        where.append(events.c.occurred_at >= night.as_of_end - within_days * SECONDS_PER_DAY)
    counted = (
        select(events.c.member_pk, func.count().label("n"))
        .where(*where)
        .group_by(events.c.member_pk)
        .subquery("counted")
    )
    start = _start(connection, pathway.start, night, None)
    started = select(start.c.member_pk).subquery("on_pathway")
    on = case((started.c.member_pk.is_not(None), 1), else_=0).label("on")
    value = case((counted.c.n > 0, 1), else_=0) if retention else func.coalesce(counted.c.n, 0)
    query = (
        select(on, func.count(), func.coalesce(func.sum(value), 0))
        .select_from(
            members.outerjoin(counted, counted.c.member_pk == members.c.id).outerjoin(
                started, started.c.member_pk == members.c.id
            )
        )
        .group_by(on)
    )
    sums = {int(flag): (int(count), int(total)) for flag, count, total in connection.execute(query)}
    members_on, total_on = sums.get(1, (0, 0))
    members_off, total_off = sums.get(0, (0, 0))
    return IndicatorSums(members_on, total_on, members_off, total_off)


# --- campaign audiences ------------------------------------------------------------------


def target_condition(
    connection: Connection, target: PathwayTarget, night: Night
) -> ColumnElement[bool]:
    """``members.id`` is at the targeted position: started, not at the end, every key action
    of ``done`` reached and none of ``not_done`` (``audience.pathways.explain_position``)."""
    pathway = _resolved(target)
    index = {a.id: i for i, a in enumerate(pathway.key_actions)}
    named = [*target.done, *target.not_done]
    position = position_query(connection, pathway, night, actions=named).subquery("position")
    wanted = [position.c.ended_at.is_(None)]
    wanted += [position.c[f"a{index[a]}"].is_not(None) for a in target.done]
    wanted += [position.c[f"a{index[a]}"].is_(None) for a in target.not_done]
    return members.c.id.in_(select(position.c.member_pk).where(and_(*wanted)))


def position_of(
    connection: Connection, pathway: Pathway, night: Night, member_pk: int
) -> PathwayPosition:
    """Where one member stands on ``pathway`` (for ``nudgeflow why``)."""
    query = position_query(connection, pathway, night, member_pk=member_pk)
    row = connection.execute(query).first()
    if row is None:
        return PathwayPosition(None, frozenset(), None)
    mapping = row._mapping
    done = frozenset(
        a.id for i, a in enumerate(pathway.key_actions) if mapping[f"a{i}"] is not None
    )
    ended = mapping["ended_at"]
    return PathwayPosition(int(mapping["started_at"]), done, None if ended is None else int(ended))


def _resolved(target: PathwayTarget) -> Pathway:
    if target.pathway is None:
        raise ValueError(f"pathway {target.pathway_id!r} was not resolved when loading")
    return target.pathway
