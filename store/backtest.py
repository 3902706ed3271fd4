"""The SQL of a backtest (``night.simulate``), run only on a scratch copy
(``store.scratch``): rewinding the copy to before the first simulated night, standing in for
dispatch, and the figures read back at the end. Set-based: no query per member.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    MetaData,
    and_,
    delete,
    false,
    func,
    insert,
    select,
    tuple_,
    update,
)

from store.guard_facts import COUNTED_STATES, SYSTEM
from store.outbox import PENDING, naive_utc
from store.schema import actions, member_tag_history, member_tags, profiles, runs, stage_history
from store.tags import CLEARED, TAGGED


@dataclass(frozen=True)
class Rewound:
    """What ``rewind_to`` took out of the copy: the stored nights it replaces."""

    actions: int
    runs: int
    tag_changes: int


def rewind_to(connection: Connection, start: date) -> Rewound:
    """Take out of the copy whatever nights from ``start`` on left, so that the simulated
    nights replace them: their actions (and rows of other tables that refer to those
    actions), their run records, their tag changes; the system tags (fatigue rests) go back
    to where ``member_tag_history`` says they stood before ``start``."""
    later = select(actions.c.action_id).where(actions.c.as_of >= start)
    for child, column in _referring_to_actions(connection):
        connection.execute(delete(child).where(child.c[column].in_(later)))
    removed = connection.execute(delete(actions).where(actions.c.as_of >= start)).rowcount
    nights = connection.execute(delete(runs).where(runs.c.as_of >= start)).rowcount
    changes = _rewind_tags(connection, start)
    return Rewound(removed, nights, changes)


def _referring_to_actions(connection: Connection) -> list[tuple[Any, str]]:
    """(table, column) of every foreign key to ``actions.action_id`` in the database."""
    reflected = MetaData()
    reflected.reflect(connection)
    found = []
    for table in reflected.sorted_tables:
        for key in table.foreign_keys:
            if key.column.table.name == actions.name and table.name != actions.name:
                found.append((table, key.parent.name))
    return found


def _rewind_tags(connection: Connection, start: date) -> int:
    """Put the system tags changed from ``start`` on back as the history says they stood
    before it (a tag first set on or after ``start`` goes); return the changes removed."""
    h = member_tag_history.c
    changed = {
        (pk, tag)
        for pk, tag in connection.execute(
            select(h.member_pk, h.tag).where(h.source == SYSTEM, h.as_of >= start).distinct()
        )
    }
    t = member_tags.c
    changed.update(
        connection.execute(
            select(t.member_pk, t.tag).where(t.source == SYSTEM, t.added_on >= start)
        )
    )
    if not changed:
        return 0
    # How each changed tag stood before `start`, from its earlier history, oldest first.
    before: dict[tuple[int, str], dict[str, Any]] = {}
    earlier = (
        select(h.member_pk, h.tag, h.change, h.as_of, h.rest_until)
        .where(h.source == SYSTEM, h.as_of < start)
        .order_by(h.as_of, h.id)
    )
    for pk, tag, change, as_of, rest_until in connection.execute(earlier):
        key = (pk, tag)
        if key not in changed:
            continue
        if change == TAGGED:
            before[key] = {"added_on": as_of, "expires_on": rest_until}
        elif change == CLEARED and key in before:
            before[key]["expires_on"] = date.fromordinal(_day(as_of).toordinal() - 1)
    keys = sorted(changed)
    for chunk in _chunks(keys, 500):
        connection.execute(
            delete(member_tags).where(
                member_tags.c.source == SYSTEM,
                tuple_(member_tags.c.member_pk, member_tags.c.tag).in_(chunk),
            )
        )
    restored = [
        {"member_pk": pk, "tag": tag, "source": SYSTEM, **before[(pk, tag)]}
        for pk, tag in keys
        if (pk, tag) in before
    ]
    for chunk in _chunks(restored, 5_000):
        connection.execute(insert(member_tags), chunk)
    removed = connection.execute(
        delete(member_tag_history).where(
            member_tag_history.c.source == SYSTEM, member_tag_history.c.as_of >= start
        )
    ).rowcount
    return int(removed)


def _day(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mark_night_sent(connection: Connection, as_of: date, now: datetime) -> int:
    """Dispatch's stand-in: the night's pending actions become ``sent`` (nothing is sent
    or issued), so the nights after count them as nudges, as they would count real ones."""
    stamp = naive_utc(now)
    result = connection.execute(
        update(actions)
        .where(actions.c.as_of == as_of, actions.c.state.in_(PENDING))
        .values(state="sent", sending_at=stamp, sent_at=stamp, updated_at=stamp)
    )
    return int(result.rowcount)


def night_costs(
    connection: Connection, start: date, end: date
) -> dict[tuple[date, str], tuple[int, str]]:
    """(night, campaign) → (reward cost in minor units, currency) of the rewarded nudges
    stored for the nights ``start``..``end`` (held-out actions cost nothing). A campaign's
    rewards have one currency: its file is the same every night of a simulation."""
    a = actions.c
    rows = connection.execute(
        select(a.as_of, a.campaign_id, a.currency, func.sum(a.cost_minor))
        .where(a.as_of >= start, a.as_of <= end, a.holdout == false(), a.currency.is_not(None))
        .group_by(a.as_of, a.campaign_id, a.currency)
    )
    return {
        (_day(as_of), campaign_id): (int(total or 0), currency)
        for as_of, campaign_id, currency, total in rows
    }


def fatigue_by_campaign(
    connection: Connection, tag: str, start: date, end: date
) -> dict[tuple[date, str], int]:
    """(night, campaign) → members tagged fatigued that night whose newest nudge up to it
    came from the campaign (the nudge that tipped them over)."""
    h, a = member_tag_history.c, actions.c
    newest = (
        func.row_number()
        .over(
            partition_by=h.id,
            order_by=(a.as_of.desc(), a.response_until.desc(), a.action_id.desc()),
        )
        .label("newest")
    )
    ranked = (
        select(h.as_of, a.campaign_id, newest)
        .select_from(
            member_tag_history.join(
                actions,
                and_(
                    a.member_pk == h.member_pk,
                    a.as_of <= h.as_of,
                    a.holdout == false(),
                    a.state.in_(COUNTED_STATES),
                ),
            )
        )
        .where(
            h.tag == tag,
            h.source == SYSTEM,
            h.change == TAGGED,
            h.as_of >= start,
            h.as_of <= end,
        )
        .subquery("ranked")
    )
    rows = connection.execute(
        select(ranked.c.as_of, ranked.c.campaign_id, func.count())
        .where(ranked.c.newest == 1)
        .group_by(ranked.c.as_of, ranked.c.campaign_id)
    )
    found: dict[tuple[date, str], int] = defaultdict(int)
    for as_of, campaign_id, count in rows:
        found[(_day(as_of), campaign_id)] += int(count)
    return dict(found)


def refresh_statistics(connection: Connection) -> None:
    """PostgreSQL: analyse the tables a night writes. Autovacuum would, but not between
    nights run back to back, and with the statistics of a night ago the planner chose plans
    many times slower as the simulated actions piled up. (SQLite needs nothing.)"""
    if connection.dialect.name != "postgresql":
        return
    names = ", ".join(
        table.name
        for table in (actions, member_tags, member_tag_history, runs, profiles, stage_history)
    )
    connection.exec_driver_sql(f"ANALYZE {names}")
