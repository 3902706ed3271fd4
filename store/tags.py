"""A member's tags as they stand on a date, and the history of the system tags' changes.

``member_tags`` is the present: one row per member, tag and source, read by the planner's
guards and the rule language. A system tag whose ``expires_on`` has passed no longer applies
and is not shown. ``member_tag_history`` is the past: every time fatigue tags a member or
clears the tag, one row is appended in the same transaction, and it is never updated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, insert, or_, select

from store.schema import member_tag_history, member_tags

TAGGED = "tagged"
CLEARED = "cleared"


@dataclass(frozen=True)
class TagChange:
    """One member's tag set or cleared on the business night ``as_of``."""

    member_pk: int
    tag: str
    source: str
    change: str  # TAGGED | CLEARED
    as_of: date
    reason: str
    rest_until: date | None = None  # TAGGED: the last day of the rest


def record_tag_changes(connection: Connection, changes: Sequence[TagChange]) -> None:
    """Append ``changes`` to the history, in batches."""
    rows = [
        {
            "member_pk": c.member_pk,
            "tag": c.tag,
            "source": c.source,
            "change": c.change,
            "as_of": c.as_of,
            "rest_until": c.rest_until,
            "reason": c.reason,
        }
        for c in changes
    ]
    for start in range(0, len(rows), 5_000):
        connection.execute(insert(member_tag_history), rows[start : start + 5_000])


def tags_on(connection: Connection, member_pk: int, as_of: date) -> list[str]:
    """The member's tags that apply on ``as_of`` (imported tags always do), sorted."""
    rows = connection.execute(
        select(member_tags.c.tag)
        .where(
            member_tags.c.member_pk == member_pk,
            or_(member_tags.c.expires_on.is_(None), member_tags.c.expires_on >= as_of),
        )
        .distinct()
        .order_by(member_tags.c.tag)
    ).scalars()
    return list(rows)


def tag_changes(connection: Connection, member_pk: int) -> list[TagChange]:
    """Every recorded change of the member's tags, oldest first."""
    h = member_tag_history.c
    rows = connection.execute(
        select(h.member_pk, h.tag, h.source, h.change, h.as_of, h.reason, h.rest_until)
        .where(h.member_pk == member_pk)
        .order_by(h.as_of, h.id)
    ).all()
    return [TagChange(*row) for row in rows]
