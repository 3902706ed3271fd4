"""What the HTML report reads that no other command does, set-based: members per stage at
the end of a day and the stage entries of each day (from ``stage_history``, which every
nightly refresh keeps: ``store.profiles``), and per night the actions sent and held out and
those answered (as ``store.impact`` and fatigue decide it: an event of one of the action's
response types inside its window). A handful of grouped queries, however many members.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, and_, case, exists, func, or_, select, true

from store.fatigue import lists_type
from store.schema import actions, events, stage_history

_H = stage_history.c


def stage_counts_on(connection: Connection, day: date) -> dict[str, int]:
    """Members per stage at the end of ``day``."""
    rows = connection.execute(
        select(_H.stage, func.count())
        .where(_H.entered_on <= day, or_(_H.left_on.is_(None), _H.left_on > day))
        .group_by(_H.stage)
    ).all()
    return {str(stage): int(n) for stage, n in rows}


def stage_entries(connection: Connection, start: date, end: date) -> dict[tuple[date, str], int]:
    """Per (day, stage): the members who moved into the stage that day (the first
    refresh's stages are where members already were, not moves, and are left out)."""
    rows = connection.execute(
        select(_H.entered_on, _H.stage, func.count())
        .where(_H.entered_on >= start, _H.entered_on <= end, _H.initial.is_(False))
        .group_by(_H.entered_on, _H.stage)
    ).all()
    return {(day, str(stage)): int(n) for day, stage, n in rows}


@dataclass(frozen=True)
class NightCounts:
    as_of: date
    sent: int
    responded: int  # of the sent actions
    held_out: int
    held_out_responded: int


def night_counts(connection: Connection, start: date, end: date) -> list[NightCounts]:
    """Per night planned in [start, end]: actions sent and held out, and those answered."""
    a, e = actions.c, events.c
    answered = exists().where(
        e.member_pk == a.member_pk,
        e.occurred_at >= a.response_from,
        e.occurred_at < a.response_until,
        lists_type(connection, a.response_types, e.type),
    )
    sent = a.state == "sent"
    held = a.holdout == true()
    rows = connection.execute(
        select(
            a.as_of,
            func.sum(case((sent, 1), else_=0)),
            func.sum(case((and_(sent, answered), 1), else_=0)),
            func.sum(case((held, 1), else_=0)),
            func.sum(case((and_(held, answered), 1), else_=0)),
        )
        .where(a.as_of >= start, a.as_of <= end, or_(sent, held))
        .group_by(a.as_of)
        .order_by(a.as_of)
    ).all()
    return [NightCounts(day, *(int(n or 0) for n in counts)) for day, *counts in rows]
