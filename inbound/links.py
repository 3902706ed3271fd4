"""Unsubscribe links followed: what ``GET`` and ``POST /u/{token}`` and
``/preferences/{token}`` do.

``check_link`` reads a token and finds its member, changing nothing (mail scanners follow
every link in a message; a GET must not unsubscribe anyone). ``unsubscribe_by_link`` applies
the withdrawal through ``delivery.unsubscribe.apply_unsubscribe`` in a transaction of its own:
once per member, however often the mail provider or the member repeats it.

``open_preferences`` and ``update_preferences`` are the preference centre's page over
``inbound.preferences``: each of the page's forms changes one thing.

All raise ``BadTokenError`` for a forged, truncated or foreign token and ``NotFoundError``
for a genuine token whose member is no longer on record; none touches the database then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from delivery.tokens import UnsubscribeToken, read_unsubscribe_token
from delivery.unsubscribe import UNSUBSCRIBED, apply_unsubscribe
from inbound.preferences import (
    PAUSE_DAYS,
    InvalidPreferenceChange,
    PreferenceChange,
    PreferenceView,
    change_preferences,
    show_preferences,
)
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


# ---- the preference centre's page ----------------------------------------------------------

SAVE, RESUME, UNSUBSCRIBE_ALL, RESUBSCRIBE = "save", "resume", "unsubscribe-all", "resubscribe"
PAUSE = "pause-"  # "pause-30", "pause-90": one button per length offered
ACTIONS = (SAVE, RESUME, UNSUBSCRIBE_ALL, RESUBSCRIBE, *(f"{PAUSE}{d}" for d in PAUSE_DAYS))


@dataclass(frozen=True)
class PageChange:
    """What a form of the preference page asks: its button (one of ``ACTIONS``) and, for
    ``save``, the categories left ticked."""

    action: str
    wanted: frozenset[str] = frozenset()


def open_preferences(
    engine: Engine,
    token: str,
    signing_key: str,
    categories: Sequence[str],
    *,
    now: datetime,
    zone: ZoneInfo,
) -> PreferenceView:
    """The preferences of ``token``'s member as of ``now``, read only."""
    parsed = read_unsubscribe_token(token, signing_key)
    with engine.connect() as connection:
        return show_preferences(connection, parsed.member_id, categories, now=now, zone=zone)


def update_preferences(
    engine: Engine,
    token: str,
    signing_key: str,
    page: PageChange,
    categories: Sequence[str],
    *,
    at: datetime,
    zone: ZoneInfo,
) -> PreferenceView:
    """Make the change one of the page's forms asks for, and only that: a pause keeps the
    categories as they are, saving the categories keeps a pause. ``InvalidPreferenceChange``
    for an unknown button or category."""
    parsed = read_unsubscribe_token(token, signing_key)
    if page.action not in ACTIONS:
        raise InvalidPreferenceChange(f"no such choice on the page: {page.action!r}")
    with engine.begin() as connection:
        now = show_preferences(connection, parsed.member_id, categories, now=at, zone=zone)
        kept_out = frozenset(name for name, subscribed in now.categories if not subscribed)
        change = PreferenceChange(categories_out=kept_out)
        if page.action == SAVE:
            unknown = sorted(page.wanted - set(categories))
            if unknown:
                raise InvalidPreferenceChange(f"unknown category {', '.join(unknown)}")
            change = PreferenceChange(categories_out=frozenset(categories) - page.wanted)
        elif page.action.startswith(PAUSE):
            change = replace(change, pause_days=int(page.action.removeprefix(PAUSE)))
        elif page.action == RESUME:
            change = replace(change, resume=True)
        elif page.action == UNSUBSCRIBE_ALL:
            change = replace(change, unsubscribe_all=True)
        else:
            change = replace(change, resubscribe=True)
        return change_preferences(connection, parsed, change, categories, at=at, zone=zone)
