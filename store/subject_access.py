"""What is held about one member, table by table, for a subject-access export
(``night.access_export``): one query per table for the one member, every column a person
may ask about. Bookkeeping columns (row hashes, import ids) are left out."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from store.ledger.tables import ledger_entries, ledger_transactions
from store.reward_tables import gifts, rewards
from store.schema import actions, events, profiles

_HIDDEN = {"member_pk", "import_id", "row_hash", "id"}


def _rows(connection: Connection, statement: Any) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row.items() if k not in _HIDDEN}
        for row in connection.execute(statement).mappings()
    ]


def profile_of(connection: Connection, member_pk: int) -> dict[str, Any] | None:
    found = _rows(connection, sa.select(profiles).where(profiles.c.member_pk == member_pk))
    return found[0] if found else None


def _member_rows(
    connection: Connection, table: sa.Table, member_pk: int, *order: sa.ColumnElement[Any]
) -> list[dict[str, Any]]:
    """The rows of ``table`` that belong to the member, in ``order``."""
    return _rows(
        connection, sa.select(table).where(table.c.member_pk == member_pk).order_by(*order)
    )


def events_of(connection: Connection, member_pk: int) -> list[dict[str, Any]]:
    return _member_rows(connection, events, member_pk, events.c.occurred_at, events.c.id)


def actions_of(connection: Connection, member_pk: int) -> list[dict[str, Any]]:
    return _member_rows(connection, actions, member_pk, actions.c.as_of, actions.c.action_id)


def rewards_of(connection: Connection, member_pk: int) -> list[dict[str, Any]]:
    return _member_rows(connection, rewards, member_pk, rewards.c.created_at, rewards.c.action_id)


def gifts_of(connection: Connection, member_pk: int) -> list[dict[str, Any]]:
    return _member_rows(connection, gifts, member_pk, gifts.c.id)


def ledger_of(connection: Connection, member_ref: str) -> list[dict[str, Any]]:
    """The ledger's transactions that name the member's pseudonym, with their amounts (the
    entry that moves money out of the budget or reservation, as a positive number)."""
    t, e = ledger_transactions, ledger_entries
    amount = sa.func.max(sa.func.abs(e.c.amount_minor))
    return _rows(
        connection,
        sa.select(
            t.c.seq,
            t.c.kind,
            t.c.campaign_id,
            t.c.action_id,
            t.c.business_date,
            t.c.memo,
            amount.label("amount_minor"),
            sa.func.min(e.c.currency).label("currency"),
        )
        .join(e, e.c.transaction_id == t.c.id)
        .where(t.c.member_ref == member_ref)
        .group_by(t.c.seq, t.c.kind, t.c.campaign_id, t.c.action_id, t.c.business_date, t.c.memo)
        .order_by(t.c.seq),
    )
