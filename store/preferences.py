"""A member's preferences, kept as events: the categories they left, and a pause of all nudges.

The preference centre records each change as an event, the durable and auditable record (as
``store.consent`` does for consent), and only the preference centre records them: an events
import refuses these types (``store.rows.PREFERENCE_EVENTS``).

* ``category_unsubscribed`` / ``category_resubscribed`` (properties ``category``,
  ``source``, ``campaign_id``): the member left, or rejoined, one category of campaigns
  (``rewards``, ``surveys``…: ``policy.yaml``'s ``categories``). The latest of the two for a
  category stands.
* ``nudges_paused`` (properties ``until``: epoch seconds at which the pause ends, ``days``,
  ``source``, ``campaign_id``) / ``nudges_resumed``: the member paused every nudge, or ended
  the pause early. The latest of the two stands; a pause is in force until ``until``.

Ties at the same second go to the event recorded last (the greater ``events.id``).

The planner asks for the preferences standing at the end of the night it plans
(``standing_preferences``: one query over every member); dispatch asks again, as of now, in
its own query (``paused_now``, ``left_category_now``), so a pause made after the plan still
stops the email.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Select,
    and_,
    cast,
    exists,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from nudgeflow.timeutil import to_epoch
from store.rows import CATEGORY_RESUBSCRIBED, CATEGORY_UNSUBSCRIBED, NUDGES_PAUSED, NUDGES_RESUMED
from store.schema import events

_CATEGORY_EVENTS = (CATEGORY_UNSUBSCRIBED, CATEGORY_RESUBSCRIBED)
_PAUSE_EVENTS = (NUDGES_PAUSED, NUDGES_RESUMED)


@dataclass(frozen=True)
class Preferences:
    """A member's standing preferences at some instant."""

    # category → when the member left it (epoch seconds)
    categories_out: dict[str, int] = field(default_factory=dict)
    paused_until: int | None = None  # a pause in force: the instant it ends (epoch seconds)


def _category(event: Any) -> ColumnElement[str]:
    category: ColumnElement[str] = event.c.properties["category"].as_string()
    return category


def _until(event: Any) -> ColumnElement[int]:
    return cast(event.c.properties["until"].as_string(), BigInteger)


def _standing(preference: Any, before: int | None) -> list[ColumnElement[bool]]:
    """``preference`` (an alias of ``events``) is a category left or a pause, and no later
    event of its kind (for a category: of that category) came after it, counting only events
    before ``before`` (epoch seconds) when it is given."""
    later = events.alias("later")
    same_kind = or_(
        and_(
            preference.c.type == CATEGORY_UNSUBSCRIBED,
            later.c.type.in_(_CATEGORY_EVENTS),
            _category(later) == _category(preference),
        ),
        and_(preference.c.type == NUDGES_PAUSED, later.c.type.in_(_PAUSE_EVENTS)),
    )
    newer = or_(
        later.c.occurred_at > preference.c.occurred_at,
        and_(later.c.occurred_at == preference.c.occurred_at, later.c.id > preference.c.id),
    )
    superseded: list[ColumnElement[bool]] = [
        later.c.member_pk == preference.c.member_pk,
        same_kind,
        newer,
    ]
    standing: list[ColumnElement[bool]] = [
        preference.c.type.in_((CATEGORY_UNSUBSCRIBED, NUDGES_PAUSED))
    ]
    if before is not None:
        superseded.append(later.c.occurred_at < before)
        standing.append(preference.c.occurred_at < before)
    return [*standing, ~exists().where(*superseded)]


def standing_query(before: int, member_pk: int | None = None) -> Select[Any]:
    """(member_pk, type, occurred_at, category, until) of each standing category left and
    pause, counting events before ``before``; for one member when ``member_pk`` is given."""
    preference = events.alias("preference")
    query = select(
        preference.c.member_pk,
        preference.c.type,
        preference.c.occurred_at,
        _category(preference),
        _until(preference),
    ).where(*_standing(preference, before))
    if member_pk is not None:
        query = query.where(preference.c.member_pk == member_pk)
    return query


def _fold(rows: Iterable[Any], before: int) -> dict[int, Preferences]:
    found: dict[int, Preferences] = {}
    for pk, kind, at, category, until in rows:
        prefs = found.setdefault(int(pk), Preferences())
        if kind == CATEGORY_UNSUBSCRIBED:
            prefs.categories_out[str(category)] = int(at)
        elif until is not None and int(until) >= before:  # a pause still in force
            found[int(pk)] = Preferences(prefs.categories_out, int(until))
    return {pk: prefs for pk, prefs in found.items() if prefs.categories_out or prefs.paused_until}


def standing_preferences(connection: Connection, before: int) -> dict[int, Preferences]:
    """member_pk → the preferences standing at ``before`` (the end of a night, epoch
    seconds), for every member who has any: one query over the preference events, the same
    shape as the consent guard's withdrawals. A pause counts when it covers ``before``."""
    result = connection.execute(standing_query(before))
    try:
        return _fold(result.cursor.fetchall(), before)
    finally:
        result.close()


def preferences_of(connection: Connection, member_pk: int, at: datetime) -> Preferences:
    """One member's preferences as of ``at`` (events at ``at`` included)."""
    before = to_epoch(at) + 1
    rows = connection.execute(standing_query(before, member_pk)).all()
    return _fold(rows, before).get(member_pk, Preferences())


def paused_now(member_pk: ColumnElement[Any], now: int) -> ColumnElement[bool]:
    """``EXISTS`` a pause in force at ``now`` for ``member_pk`` (correlated; every event
    recorded so far counts, as for ``store.consent.withdrawn_by_events``)."""
    preference = events.alias("preference")
    return exists().where(
        preference.c.member_pk == member_pk,
        preference.c.type == NUDGES_PAUSED,
        _until(preference) > now,
        *_standing(preference, None),
    )


def left_category_now(
    member_pk: ColumnElement[Any], category: ColumnElement[Any]
) -> ColumnElement[bool]:
    """``EXISTS`` a standing ``category_unsubscribed`` of ``category`` for ``member_pk``."""
    preference = events.alias("preference")
    return exists().where(
        preference.c.member_pk == member_pk,
        preference.c.type == CATEGORY_UNSUBSCRIBED,
        _category(preference) == category,
        *_standing(preference, None),
    )


def _latest_id(connection: Connection, member_pk: int, kinds: tuple[str, ...]) -> str:
    found = connection.execute(
        select(events.c.event_id)
        .where(events.c.member_pk == member_pk, events.c.type.in_(kinds))
        .order_by(events.c.occurred_at.desc(), events.c.id.desc())
        .limit(1)
    ).scalar()
    return "" if found is None else str(found)


def record_preference(
    connection: Connection,
    member_pk: int,
    member_id: str,
    kind: str,
    at: datetime,
    properties: dict[str, Any],
) -> None:
    """Record one preference event at ``at``. Its id is derived from the member, the change,
    the instant and the latest event of its kind before it, so a request retried (or racing
    itself) records it once, while a change made, undone and made again within one second
    still records all three. The caller owns the transaction."""
    kinds = _PAUSE_EVENTS if kind in _PAUSE_EVENTS else _CATEGORY_EVENTS
    previous = _latest_id(connection, member_pk, kinds)
    detail = str(properties.get("category", properties.get("until", "")))
    stamp = to_epoch(at)
    digest = hashlib.sha256(
        "\n".join((member_id, kind, detail, str(stamp), previous)).encode()
    ).hexdigest()[:32]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(events)
        .values(
            event_id=f"nudgeflow-{kind.replace('_', '-')}-{digest}",
            member_pk=member_pk,
            type=kind,
            occurred_at=stamp,
            properties=properties,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
