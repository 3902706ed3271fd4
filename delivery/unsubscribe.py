"""Applying an unsubscribe: the member is never emailed again.

``apply_unsubscribe`` is what ``nudgeflow unsubscribe TOKEN`` calls, and what the one-click
webhook endpoint (RFC 8058 POST to ``/u/TOKEN``) will call. It records the withdrawal twice,
on purpose:

* an ``unsubscribed`` event, which the planner's consent guard reads and which no later
  members import can undo (it is the durable record, with the campaign that prompted it);
* ``members.email_opt_in = false``, so the member's row says so too.

It is idempotent: a second click, a retried webhook or a racing duplicate changes nothing
(the event id is derived from the member, and the insert skips an existing one). Once an
operator or the member restored consent (``store.consent.restore_consent``), the next
unsubscribe is a new event: its id is derived from the member and that restore.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from delivery.tokens import UnsubscribeToken
from nudgeflow.errors import NotFoundError
from nudgeflow.timeutil import to_epoch
from store.consent import latest_restore_id, standing_withdrawals
from store.schema import events, members

UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True)
class UnsubscribeOutcome:
    member_id: str
    campaign_id: str
    already: bool  # True: the member had already unsubscribed; nothing changed


def unsubscribe_event_id(member_id: str, after_restore: str | None = None) -> str:
    """One event id per member (hashed: member ids may be up to 200 characters long), and one
    more after each restore of their consent (``after_restore``: that restore's event id)."""
    event_id = "nudgeflow-unsubscribe-" + hashlib.sha256(member_id.encode()).hexdigest()[:32]
    if after_restore is not None:
        event_id += "-" + hashlib.sha256(after_restore.encode()).hexdigest()[:16]
    return event_id


def apply_unsubscribe(
    connection: Connection, token: UnsubscribeToken, *, at: datetime, source: str = "link"
) -> UnsubscribeOutcome:
    """Record that ``token``'s member unsubscribed at ``at`` (``source``: link, one-click,
    mailto, cli…). The caller owns the transaction; ``NotFoundError`` for an unknown member
    (say, one deleted since the email went out)."""
    row = connection.execute(
        select(members.c.id, members.c.email_opt_in).where(members.c.member_id == token.member_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no member with member_id {token.member_id!r}")
    member_pk, opted_in = row[0], bool(row[1])
    standing = standing_withdrawals().subquery()  # not undone by a restore since
    had_event = (
        connection.execute(
            select(standing.c.member_pk)
            .where(standing.c.member_pk == member_pk, standing.c.type == UNSUBSCRIBED)
            .limit(1)
        ).first()
        is not None
    )
    if not had_event:
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        restore = latest_restore_id(connection, member_pk)
        connection.execute(
            dialect.insert(events)
            .values(
                event_id=unsubscribe_event_id(token.member_id, restore),
                member_pk=member_pk,
                type=UNSUBSCRIBED,
                occurred_at=to_epoch(at),
                properties={"campaign_id": token.campaign_id, "source": source},
            )
            # A concurrent request for the same member may have inserted it meanwhile.
            .on_conflict_do_nothing(index_elements=["event_id"])
        )
    if opted_in:
        connection.execute(
            update(members)
            .where(members.c.id == member_pk)
            .values(email_opt_in=False, updated_at=at.astimezone(UTC).replace(tzinfo=None))
        )
    return UnsubscribeOutcome(
        member_id=token.member_id,
        campaign_id=token.campaign_id,
        already=had_event and not opted_in,
    )
