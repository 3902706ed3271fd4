"""Email consent: when it is withdrawn, and the one way it comes back.

A member's consent is **withdrawn** when either

* their row says ``email_opt_in = false``: a members import said so, or they unsubscribed
  (``delivery.unsubscribe``), or
* a withdrawing event is on record (``unsubscribed``, ``email_bounced``,
  ``email_spam_report``: ``CONSENT_EVENTS``) and no ``consent_restored`` event came at or
  after it.

An import may withdraw consent but never gives it back: a members row saying
``email_opt_in=true`` leaves a withdrawn member withdrawn (``store.rows.asks_to_restore_consent``;
the import counts such rows), and an events import refuses ``consent_restored`` events.
Consent comes back only through ``restore_consent``, an explicit act recorded as a
``consent_restored`` event saying who, why and from where, which also sets ``email_opt_in``
back to true: today the operator's ``nudgeflow members consent MEMBER --restore``, later the
member's own preference centre (``source="preference-centre"``).

The planner (``store.audience_sql``) asks for the withdrawals standing at the end of the
night it plans; dispatch (``store.outbox``) asks again, as of now, just before sending.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from nudgeflow.errors import NotFoundError
from nudgeflow.timeutil import from_epoch, to_epoch
from store.rows import CONSENT_RESTORED, CONTENT_COLUMNS, row_hash
from store.schema import events, members

# Events that withdraw consent until it is restored: no campaign setting overrides them.
CONSENT_EVENTS = ("unsubscribed", "email_bounced", "email_spam_report")
OPTED_OUT = "email_opt_in"  # the withdrawal a member row's email_opt_in=false records


def standing_withdrawals(before: int | None = None) -> Select[Any]:
    """(member_pk, type, occurred_at) of every withdrawing event no restore came at or after,
    counting only events before ``before`` (epoch seconds) when it is given.

    A restore wins a tie: it is an explicit act made knowing the withdrawal."""
    withdrawal = events.alias("withdrawal")
    return select(withdrawal.c.member_pk, withdrawal.c.type, withdrawal.c.occurred_at).where(
        *_standing(withdrawal, before)
    )


def withdrawn_by_events(member_pk: ColumnElement[Any]) -> ColumnElement[bool]:
    """``EXISTS`` a standing withdrawal (as of now) for the member ``member_pk`` refers to,
    correlated so that each member is looked up by the ``(member_pk, occurred_at)`` index."""
    withdrawal = events.alias("withdrawal")
    return exists().where(withdrawal.c.member_pk == member_pk, *_standing(withdrawal, None))


def _standing(withdrawal: Any, before: int | None) -> list[ColumnElement[bool]]:
    restore = events.alias("restore")
    restored: list[ColumnElement[bool]] = [
        restore.c.member_pk == withdrawal.c.member_pk,
        restore.c.type == CONSENT_RESTORED,
        restore.c.occurred_at >= withdrawal.c.occurred_at,
    ]
    standing: list[ColumnElement[bool]] = [withdrawal.c.type.in_(CONSENT_EVENTS)]
    if before is not None:
        restored.append(restore.c.occurred_at < before)
        standing.append(withdrawal.c.occurred_at < before)
    return [*standing, ~exists().where(*restored)]


@dataclass(frozen=True)
class Restore:
    """The latest ``consent_restored`` event of a member."""

    at: datetime
    by: str
    reason: str
    source: str


@dataclass(frozen=True)
class Consent:
    """A member's consent as of now, and why."""

    member_id: str
    member_pk: int
    opted_in: bool  # members.email_opt_in
    withdrawal: tuple[str, datetime] | None  # the earliest standing withdrawing event
    restored: Restore | None  # the latest restore, if consent was ever restored

    @property
    def given(self) -> bool:
        return self.opted_in and self.withdrawal is None

    @property
    def withdrawn_by(self) -> str | None:
        """What withdrew it: an event type, ``email_opt_in``, or ``None`` when it is given."""
        if self.withdrawal is not None:
            return self.withdrawal[0]
        return None if self.opted_in else OPTED_OUT


def consent_of(connection: Connection, member_id: str) -> Consent:
    """The member's consent; ``NotFoundError`` for an unknown member."""
    row = connection.execute(
        select(members.c.id, members.c.email_opt_in).where(members.c.member_id == member_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no member with member_id {member_id!r}")
    pk, opted_in = int(row[0]), bool(row[1])
    standing = standing_withdrawals().subquery()
    first = connection.execute(
        select(standing.c.type, standing.c.occurred_at)
        .where(standing.c.member_pk == pk)
        .order_by(standing.c.occurred_at, standing.c.type)
        .limit(1)
    ).first()
    latest = connection.execute(
        select(events.c.occurred_at, events.c.properties)
        .where(events.c.member_pk == pk, events.c.type == CONSENT_RESTORED)
        .order_by(events.c.occurred_at.desc(), events.c.id.desc())
        .limit(1)
    ).first()
    restored = None
    if latest is not None:
        said = dict(latest.properties or {})
        restored = Restore(
            from_epoch(int(latest.occurred_at)),
            str(said.get("by", "")),
            str(said.get("reason", "")),
            str(said.get("source", "")),
        )
    withdrawal = None if first is None else (str(first.type), from_epoch(int(first.occurred_at)))
    return Consent(member_id, pk, opted_in, withdrawal, restored)


def restore_consent(
    connection: Connection,
    member_id: str,
    *,
    at: datetime,
    by: str,
    reason: str,
    source: str,
) -> tuple[Consent, bool]:
    """Give ``member_id`` their consent back at ``at``: a ``consent_restored`` event (at
    ``at``, or at the latest withdrawal if that is later) with
    ``by`` (who), ``reason`` (why) and ``source`` (``cli``, ``preference-centre``…), and
    ``email_opt_in`` set to true. Returns the consent as it was before, and whether anything
    was restored (nothing is when consent was given). The caller owns the transaction."""
    reason, by = reason.strip(), by.strip()
    if not reason or not by:
        raise ValueError("a restore needs who restores it and why")
    before = consent_of(connection, member_id)
    if before.given:
        return before, False
    # At ``at``, or at the latest withdrawal if that is later (an imported bounce stamped
    # ahead of this clock): a restore covers every withdrawal it was asked to restore.
    standing = standing_withdrawals().subquery()
    latest = connection.execute(
        select(func.max(standing.c.occurred_at)).where(standing.c.member_pk == before.member_pk)
    ).scalar()
    stamp = max(to_epoch(at), int(latest)) if latest is not None else to_epoch(at)
    digest = hashlib.sha256(f"{member_id}\n{stamp}".encode()).hexdigest()[:32]
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(events)
        .values(
            event_id=f"nudgeflow-consent-restored-{digest}",
            member_pk=before.member_pk,
            type=CONSENT_RESTORED,
            occurred_at=stamp,
            properties={
                "by": by,
                "reason": reason,
                "source": source,
                "withdrawn_by": before.withdrawn_by,
            },
        )
        # The same restore retried at the same instant records it once.
        .on_conflict_do_nothing(index_elements=["event_id"])
    )
    if not before.opted_in:
        content = connection.execute(
            select(*(members.c[name] for name in CONTENT_COLUMNS)).where(
                members.c.id == before.member_pk
            )
        ).one()
        after = dict(content._mapping) | {"email_opt_in": True}
        connection.execute(
            update(members)
            .where(members.c.id == before.member_pk)
            .values(
                email_opt_in=True,
                # Kept in step, so the next import of an unchanged row counts it unchanged.
                row_hash=row_hash(after),
                updated_at=at.astimezone(UTC).replace(tzinfo=None),
            )
        )
    return before, True


def latest_restore_id(connection: Connection, member_pk: int) -> str | None:
    """The event id of the member's latest ``consent_restored`` event, if any."""
    found = connection.execute(
        select(events.c.event_id)
        .where(events.c.member_pk == member_pk, events.c.type == CONSENT_RESTORED)
        .order_by(events.c.occurred_at.desc(), events.c.id.desc())
        .limit(1)
    ).scalar()
    return None if found is None else str(found)
