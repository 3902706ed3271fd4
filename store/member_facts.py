"""One member's facts for the pure evaluators (``nudgeflow why``): the member and their
events for the rule language, the refreshed profile for the audience criteria, and what the
triggers look at; each read from the same view of the tables that the SQL selection uses.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, or_, select

from audience.criteria import ProfileFacts
from audience.facts import EventFact, MemberFacts
from audience.rules import MEMBER_FIELDS
from domain.triggers import TriggerFacts
from store.audience_sql import left_stage, open_stage
from store.schema import events, member_tags, members, profiles


def find_member(connection: Connection, member_id: str) -> int | None:
    """The primary key of the member with ``member_id``, or ``None``."""
    found = connection.execute(
        select(members.c.id).where(members.c.member_id == member_id)
    ).scalar()
    return None if found is None else int(found)


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


def _profile_select(member_pk: int, *columns: ColumnElement[Any]) -> Select[Any]:
    """``columns`` of the member's profile ⋈ member ⟕ open stage row."""
    return (
        select(*columns)
        .select_from(
            profiles.join(members, members.c.id == profiles.c.member_pk).outerjoin(
                open_stage,
                and_(
                    open_stage.c.member_pk == profiles.c.member_pk, open_stage.c.left_on.is_(None)
                ),
            )
        )
        .where(profiles.c.member_pk == member_pk)
    )


def profile_facts(connection: Connection, member_pk: int) -> ProfileFacts | None:
    """The member's refreshed profile and open stage row, or ``None`` without a profile."""
    p = profiles.c
    row = connection.execute(
        _profile_select(
            member_pk,
            p.stage,
            open_stage.c.entered_on,
            open_stage.c.initial,
            p.last_purchase_at,
            p.segment,
            p.score,
        )
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


def trigger_facts(
    connection: Connection, member_pk: int, member: MemberFacts
) -> TriggerFacts | None:
    """What the triggers look at for the member (join date and events from ``member``), or
    ``None`` without a profile: without one no campaign selects the member."""
    row = connection.execute(
        _profile_select(
            member_pk,
            profiles.c.first_purchase_at,
            members.c.birth_month,
            members.c.birth_day,
            profiles.c.stage,
            open_stage.c.entered_on,
            open_stage.c.initial,
            left_stage(),
        )
    ).first()
    if row is None:
        return None
    first_purchase_at, birth_month, birth_day, stage, entered_on, initial, left = row
    return TriggerFacts(
        joined_at=member.joined_at,
        first_purchase_at=None if first_purchase_at is None else int(first_purchase_at),
        birth_month=birth_month,
        birth_day=birth_day,
        stage=stage,
        stage_entered_on=entered_on,
        stage_entry_initial=bool(initial),
        events=member.events,
        previous_stage=left,
    )
