"""Unsubscribe links followed: what ``GET`` and ``POST /u/{token}`` do.

``check_link`` reads a token and finds its member, changing nothing (mail scanners follow
every link in a message; a GET must not unsubscribe anyone). ``unsubscribe_by_link`` applies
the withdrawal through ``delivery.unsubscribe.apply_unsubscribe`` in a transaction of its own:
once per member, however often the mail provider or the member repeats it.

Both raise ``BadTokenError`` for a forged, truncated or foreign token and ``NotFoundError``
for a genuine token whose member is no longer on record; neither touches the database then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, select

from delivery.tokens import UnsubscribeToken, read_unsubscribe_token
from delivery.unsubscribe import UNSUBSCRIBED, apply_unsubscribe
from nudgeflow.errors import NotFoundError
from store.consent import standing_withdrawals
from store.schema import members

ONE_CLICK = "one-click"  # RFC 8058: the mail provider's POST
LINK = "link"  # the member pressed the page's button


@dataclass(frozen=True)
class LinkState:
    """What a link's page may say: whose token it is (never shown) and whether that member
    has already unsubscribed."""

    token: UnsubscribeToken
    unsubscribed: bool
    changed: bool = False  # this request withdrew the consent (not a repeat)


def _member_pk(connection: Connection, token: UnsubscribeToken) -> int:
    pk = connection.execute(
        select(members.c.id).where(members.c.member_id == token.member_id)
    ).scalar_one_or_none()
    if pk is None:
        raise NotFoundError("this link belongs to a member who is no longer on record")
    return int(pk)


def is_unsubscribed(connection: Connection, token: UnsubscribeToken) -> bool:
    """Whether the member has a standing withdrawal of email consent (``unsubscribed`` not
    undone by a restore); ``NotFoundError`` when the member is gone."""
    member_pk = _member_pk(connection, token)
    standing = standing_withdrawals().subquery()
    found = connection.execute(
        select(standing.c.member_pk)
        .where(standing.c.member_pk == member_pk, standing.c.type == UNSUBSCRIBED)
        .limit(1)
    ).first()
    return found is not None


def check_link(engine: Engine, token: str, signing_key: str) -> LinkState:
    """The state behind an unsubscribe link, read only."""
    parsed = read_unsubscribe_token(token, signing_key)
    with engine.connect() as connection:
        return LinkState(parsed, is_unsubscribed(connection, parsed))


def unsubscribe_by_link(
    engine: Engine, token: str, signing_key: str, *, at: datetime, source: str
) -> LinkState:
    """Withdraw the email consent of ``token``'s member at ``at`` (``source``: ``one-click``
    or ``link``). Idempotent: a repeat finds the withdrawal standing and adds nothing."""
    parsed = read_unsubscribe_token(token, signing_key)
    with engine.begin() as connection:
        outcome = apply_unsubscribe(connection, parsed, at=at, source=source)
    return LinkState(parsed, unsubscribed=True, changed=not outcome.already)
