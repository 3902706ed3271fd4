"""Erasure in SQL: what ``night.erasure`` reads and writes to forget a member, each a
set-based statement over the member's rows (and one scan of the tables that may mention
them by value: other members' event properties, the inbox's stored request bodies).

What is removed: the member row's personal columns (the row itself stays, under a
pseudonym, so actions, profiles and stage history still count), their import tags, their
events' properties, their gifts' addresses and tracking numbers, their rewards' links and
Stripe customer, the email in their actions' failure reasons. What stays: the events
themselves (type, instant, amount), actions, rewards' amounts and codes, the ledger
(which names members only by a keyed reference and is append-only), stage and tag history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Engine

from domain.erasure import ERASED
from store.reward_tables import gifts, rewards
from store.schema import (
    actions,
    erasures,
    events,
    forgotten_refs,
    inbox,
    member_tags,
    members,
    runs,
)

IN_FLIGHT = ("reserved", "reward_issued", "sending", "unknown")  # dispatch has begun
GIFT_ADDRESS = (
    "recipient",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "region",
    "country",
    "tracking",
)


@dataclass(frozen=True)
class Receipt:
    """An erasure receipt as stored: never the erased data."""

    id: int
    member_pk: int
    member_ref: str
    erased_at: datetime
    erased_by: str
    reason: str | None
    removed: dict[str, int]


@contextmanager
def overwriting(connection: Connection) -> Iterator[None]:
    """On SQLite, overwrite what the body deletes or rewrites with zeros (``secure_delete``)
    instead of leaving it in the file's free space; elsewhere nothing."""
    if connection.dialect.name != "sqlite":
        yield
        return
    connection.exec_driver_sql("PRAGMA secure_delete = ON")
    try:
        yield
    finally:
        connection.exec_driver_sql("PRAGMA secure_delete = OFF")


def checkpoint(engine: Engine) -> bool:
    """On SQLite, copy the write-ahead log into the database file and empty it, so the
    overwritten pages replace the old ones there; whether it completed (a reader holding an
    old snapshot keeps it from finishing: the next checkpoint does)."""
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as connection:
        busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    return not busy


def find_member(connection: Connection, member_id: str) -> sa.RowMapping | None:
    return (
        connection.execute(sa.select(members).where(members.c.member_id == member_id))
        .mappings()
        .first()
    )


def _receipt(row: Any) -> Receipt:
    return Receipt(
        id=row.id,
        member_pk=row.member_pk,
        member_ref=row.member_ref,
        erased_at=row.erased_at,
        erased_by=row.erased_by,
        reason=row.reason,
        removed=dict(row.removed or {}),
    )


def receipt_for_refs(connection: Connection, refs: Sequence[str]) -> Receipt | None:
    """The erasure whose forgotten references include one of ``refs`` (the latest)."""
    row = connection.execute(
        sa.select(erasures)
        .join(forgotten_refs, forgotten_refs.c.erasure_id == erasures.c.id)
        .where(forgotten_refs.c.ref.in_(list(refs)))
        .order_by(erasures.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _receipt(row)


def receipt_of_member(connection: Connection, member_pk: int) -> Receipt | None:
    row = connection.execute(sa.select(erasures).where(erasures.c.member_pk == member_pk)).first()
    return None if row is None else _receipt(row)


def list_receipts(connection: Connection) -> list[Receipt]:
    rows = connection.execute(sa.select(erasures).order_by(erasures.c.id))
    return [_receipt(row) for row in rows]


def actions_in_flight(connection: Connection, member_pk: int) -> dict[str, int]:
    """The member's actions whose dispatch began and has not ended, counted by state."""
    rows = connection.execute(
        sa.select(actions.c.state, sa.func.count())
        .where(actions.c.member_pk == member_pk, actions.c.state.in_(IN_FLIGHT))
        .group_by(actions.c.state)
    )
    return {state: int(count) for state, count in rows}


def fail_planned(connection: Connection, member_pk: int, now: datetime) -> int:
    """Fail the member's planned actions (nothing reserved, nothing sent yet)."""
    result = connection.execute(
        sa.update(actions)
        .where(actions.c.member_pk == member_pk, actions.c.state == "planned")
        .values(
            state="failed",
            reason="the member was forgotten (erasure) before dispatch",
            finished_at=now,
            updated_at=now,
        )
    )
    return int(result.rowcount)


def message_keys(connection: Connection, member_pk: int) -> list[tuple[date, str]]:
    """(night, action id) of each of the member's actions that may have left an email."""
    rows = connection.execute(
        sa.select(actions.c.as_of, actions.c.action_id).where(
            actions.c.member_pk == member_pk, actions.c.sending_at.is_not(None)
        )
    )
    return [(as_of, action_id) for as_of, action_id in rows]


def _like(needle: str) -> str:
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _patterns(needles: Iterable[str]) -> list[str]:
    """LIKE patterns (lower case) for each needle as it may be stored: plain, and escaped as
    JSON text escapes it (``json.dumps`` writes non-ASCII as ``\\uXXXX``)."""
    found: set[str] = set()
    for needle in needles:
        if not needle:
            continue
        found.add(_like(needle.lower()))
        found.add(_like(json.dumps(needle.lower())[1:-1]))
    return sorted(found)


def _mentions(column: ColumnElement[Any], needles: Iterable[str]) -> ColumnElement[bool]:
    text = sa.func.lower(sa.cast(column, sa.Text))
    return sa.or_(*(text.like(pattern, escape="\\") for pattern in _patterns(needles)))


def quoted(member_id: str) -> str:
    """The member id as a JSON string (with its quotes), to find it as a whole value."""
    return json.dumps(member_id)


def events_mentioning(
    connection: Connection, member_pk: int, needles: Sequence[str]
) -> list[tuple[int, Any]]:
    """Other members' events whose properties mention a needle: (id, properties)."""
    rows = connection.execute(
        sa.select(events.c.id, events.c.properties).where(
            events.c.member_pk != member_pk,
            events.c.properties.is_not(None),
            _mentions(events.c.properties, needles),
        )
    )
    return [(int(pk), properties) for pk, properties in rows]


def set_event_properties(connection: Connection, rows: Sequence[tuple[int, Any]]) -> None:
    if rows:
        connection.execute(
            sa.update(events)
            .where(events.c.id == sa.bindparam("b_id"))
            .values(properties=sa.bindparam("b_properties", type_=events.c.properties.type)),
            [{"b_id": pk, "b_properties": properties} for pk, properties in rows],
        )


def inbox_mentioning(connection: Connection, needles: Sequence[str]) -> list[tuple[int, str, str]]:
    """Inbox rows whose body mentions a needle: (id, kind, body)."""
    rows = connection.execute(
        sa.select(inbox.c.id, inbox.c.kind, inbox.c.body).where(_mentions(inbox.c.body, needles))
    )
    return [(int(pk), kind, body) for pk, kind, body in rows]


def set_inbox_bodies(connection: Connection, rows: Sequence[tuple[int, str]]) -> None:
    if rows:
        connection.execute(
            sa.update(inbox)
            .where(inbox.c.id == sa.bindparam("b_id"))
            .values(body=sa.bindparam("b_body")),
            [{"b_id": pk, "b_body": body} for pk, body in rows],
        )


def runs_mentioning(connection: Connection, needles: Sequence[str]) -> list[tuple[int, Any, Any]]:
    """Runs whose summary or error mentions a needle: (id, summary, error)."""
    rows = connection.execute(
        sa.select(runs.c.id, runs.c.summary, runs.c.error).where(
            sa.or_(_mentions(runs.c.summary, needles), _mentions(runs.c.error, needles))
        )
    )
    return [(int(pk), summary, error) for pk, summary, error in rows]


def set_runs(connection: Connection, rows: Sequence[tuple[int, Any, Any]]) -> None:
    if rows:
        connection.execute(
            sa.update(runs)
            .where(runs.c.id == sa.bindparam("b_id"))
            .values(
                summary=sa.bindparam("b_summary", type_=runs.c.summary.type),
                error=sa.bindparam("b_error"),
            ),
            [{"b_id": pk, "b_summary": summary, "b_error": error} for pk, summary, error in rows],
        )


def erase_member_rows(
    connection: Connection, member_pk: int, pseudonym: str, email: str, now: datetime
) -> dict[str, int]:
    """Remove the member's personal data from the rows keyed by them; what was removed, as
    counts. ``email`` is the stored address, removed from failure reasons."""
    removed: dict[str, int] = {}
    connection.execute(
        sa.update(members)
        .where(members.c.id == member_pk)
        .values(
            member_id=pseudonym,
            email="",
            first_name=None,
            last_name=None,
            birth_year=None,
            birth_month=None,
            birth_day=None,
            country=None,
            timezone=None,
            stripe_customer_id=None,
            email_opt_in=False,  # never selected again
            attributes=sa.null(),
            row_hash="forgotten",
            import_id=None,
            source_line=None,
            updated_at=now,
        )
    )
    removed["member_profile"] = 1

    def count(statement: Any) -> int:
        return int(connection.execute(statement).rowcount)

    removed["imported_tags"] = count(
        sa.delete(member_tags).where(
            member_tags.c.member_pk == member_pk, member_tags.c.source == "import"
        )
    )
    removed["event_properties"] = count(
        sa.update(events)
        .where(events.c.member_pk == member_pk, events.c.properties.is_not(None))
        .values(properties=sa.null())
    )
    gift_columns = [gifts.c[name].is_not(None) for name in GIFT_ADDRESS]
    removed["gift_addresses"] = count(
        sa.update(gifts)
        .where(gifts.c.member_pk == member_pk, sa.or_(*gift_columns))
        .values(**dict.fromkeys(GIFT_ADDRESS))
    )
    removed["reward_links_and_customers"] = count(
        sa.update(rewards)
        .where(
            rewards.c.member_pk == member_pk,
            sa.or_(rewards.c.link.is_not(None), rewards.c.customer.is_not(None)),
        )
        .values(link=None, customer=None)
    )
    if email:
        removed["action_reasons"] = count(
            sa.update(actions)
            .where(actions.c.member_pk == member_pk, _mentions(actions.c.reason, [email]))
            .values(reason=sa.func.replace(actions.c.reason, email, ERASED))
        )
    return removed


def record_erasure(
    connection: Connection,
    *,
    member_pk: int,
    member_ref: str,
    erased_at: datetime,
    erased_by: str,
    reason: str | None,
    removed: dict[str, int],
    refs: Sequence[tuple[str, str]],
    key_id: str,
) -> int:
    """Store the receipt and the forgotten references ((kind, ref)); return its id."""
    result = connection.execute(
        sa.insert(erasures).values(
            member_pk=member_pk,
            member_ref=member_ref,
            erased_at=erased_at,
            erased_by=erased_by,
            reason=reason,
            removed=removed,
        )
    )
    assert result.inserted_primary_key is not None
    erasure_id = int(result.inserted_primary_key[0])
    existing = set(
        connection.execute(
            sa.select(forgotten_refs.c.ref).where(forgotten_refs.c.ref.in_([r for _, r in refs]))
        ).scalars()
    )
    rows = [
        {"ref": ref, "kind": kind, "erasure_id": erasure_id, "key_id": key_id}
        for kind, ref in refs
        if ref not in existing
    ]
    if rows:
        connection.execute(sa.insert(forgotten_refs), rows)
    return erasure_id


@dataclass(frozen=True)
class Forgotten:
    """Every forgotten reference made with one signing key: ref → (kind, erased on)."""

    refs: dict[str, tuple[str, date]]
    other_keys: int  # references made with another signing key (they cannot be checked)


def load_forgotten(connection: Connection, key_id: str) -> Forgotten:
    """Every forgotten reference, read once (an import holds them in a dict)."""
    rows = connection.execute(
        sa.select(
            forgotten_refs.c.ref,
            forgotten_refs.c.kind,
            forgotten_refs.c.key_id,
            erasures.c.erased_at,
        ).join(erasures, erasures.c.id == forgotten_refs.c.erasure_id)
    )
    refs: dict[str, tuple[str, date]] = {}
    other = 0
    for ref, kind, made_with, erased_at in rows:
        if made_with == key_id:
            refs[ref] = (kind, erased_at.date())
        else:
            other += 1
    return Forgotten(refs, other)


def drop_forgotten(connection: Connection, refs: Sequence[str]) -> None:
    """Forget the forgotten references of members an import took back."""
    if refs:
        connection.execute(sa.delete(forgotten_refs).where(forgotten_refs.c.ref.in_(list(refs))))
