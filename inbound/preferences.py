"""The preference centre's use cases: what a member sees (``show_preferences``) and what
they change (``change_preferences``), reached with the signed token of any email's links.

A member may

* leave (or rejoin) categories of campaigns (``policy.yaml``'s ``categories``): a campaign of
  a category they left never nudges them;
* pause every nudge for ``PAUSE_DAYS`` days, or end a pause early;
* unsubscribe from everything (``delivery.unsubscribe.apply_unsubscribe``), or give their
  email consent back (``store.consent.restore_consent``, by the member).

Each change is an event (``store.preferences``); the planner and dispatch treat a pause and
a category left as no consent. A change is idempotent: asking again for what already holds
records nothing. The caller owns the transaction and passes the clock's ``now``/``at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from delivery.tokens import UnsubscribeToken
from delivery.unsubscribe import apply_unsubscribe
from nudgeflow.errors import NudgeflowError
from nudgeflow.timeutil import business_date, day_end, to_epoch
from store.consent import consent_of, restore_consent
from store.preferences import preferences_of, record_preference
from store.rows import CATEGORY_RESUBSCRIBED, CATEGORY_UNSUBSCRIBED, NUDGES_PAUSED, NUDGES_RESUMED

PAUSE_DAYS = (30, 90)
SOURCE = "preference-centre"


class InvalidPreferenceChange(NudgeflowError, ValueError):
    """A preference change that cannot be made: an unknown category, a pause of a length
    not offered, or two contradictory requests (pause and resume)."""

    exit_code = 1


@dataclass(frozen=True)
class PreferenceView:
    member_id: str
    email_consent: bool  # False: withdrawn (unsubscribed from everything, bounced, …)
    categories: tuple[tuple[str, bool], ...]  # (category, subscribed) for each known category
    paused_until: date | None  # the last business day of a pause in force, else None


@dataclass(frozen=True)
class PreferenceChange:
    unsubscribe_all: bool = False  # withdraw email consent (apply_unsubscribe)
    categories_out: frozenset[str] = frozenset()  # the categories NOT wanted, after the change
    pause_days: int | None = None  # 30 or 90 starts (or replaces) a pause from `at`
    resume: bool = False  # end a pause in force now
    resubscribe: bool = False  # give email consent back (restore_consent, by the member)


def show_preferences(
    connection: Connection,
    member_id: str,
    categories: Sequence[str],
    *,
    now: datetime,
    zone: ZoneInfo,
) -> PreferenceView:
    """The member's preferences as of ``now``; ``NotFoundError`` for an unknown member."""
    consent = consent_of(connection, member_id)  # NotFoundError for an unknown member
    prefs = preferences_of(connection, consent.member_pk, now)
    paused = prefs.paused_until
    return PreferenceView(
        member_id=member_id,
        email_consent=consent.given,
        categories=tuple((c, c not in prefs.categories_out) for c in categories),
        paused_until=None if paused is None else pause_last_day(paused, zone),
    )


def pause_last_day(until: int, zone: ZoneInfo) -> date:
    """The last business day a pause ending at ``until`` (epoch seconds) covers."""
    return business_date(until - 1, zone)


def pause_end(at: datetime, days: int, zone: ZoneInfo) -> int:
    """A pause of ``days`` from ``at`` covers that business day and the ``days - 1`` after
    it: it ends (epoch seconds) when the last of them ends in ``zone``."""
    return day_end(business_date(to_epoch(at), zone) + timedelta(days=days - 1), zone)


def _check(change: PreferenceChange, categories: Sequence[str]) -> None:
    unknown = sorted(change.categories_out - set(categories))
    if unknown:
        known = ", ".join(categories) or "none"
        raise InvalidPreferenceChange(
            f"unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)} "
            f"(known: {known})"
        )
    if change.pause_days is not None and change.pause_days not in PAUSE_DAYS:
        offered = " or ".join(str(d) for d in PAUSE_DAYS)
        raise InvalidPreferenceChange(f"a pause lasts {offered} days, not {change.pause_days}")
    if change.pause_days is not None and change.resume:
        raise InvalidPreferenceChange("a change cannot both start a pause and end it")
    if change.unsubscribe_all and change.resubscribe:
        raise InvalidPreferenceChange("a change cannot both unsubscribe and resubscribe")


def change_preferences(
    connection: Connection,
    token: UnsubscribeToken,
    change: PreferenceChange,
    categories: Sequence[str],
    *,
    at: datetime,
    zone: ZoneInfo,
) -> PreferenceView:
    """Make ``change`` for the token's member at ``at`` and return their preferences after
    it. ``InvalidPreferenceChange`` for an unknown category, a pause not in ``PAUSE_DAYS``
    or a contradictory change; ``NotFoundError`` for an unknown member. Idempotent: what
    already holds records nothing. The caller owns the transaction."""
    _check(change, categories)
    member_id = token.member_id
    consent = consent_of(connection, member_id)
    pk = consent.member_pk
    said: dict[str, Any] = {"source": SOURCE, "campaign_id": token.campaign_id}

    if change.unsubscribe_all:
        apply_unsubscribe(connection, token, at=at, source=SOURCE)
    if change.resubscribe and not consent.given:
        restore_consent(
            connection,
            member_id,
            at=at,
            by="the member",
            reason=f"asked in the preference centre (from {token.campaign_id})",
            source=SOURCE,
        )

    before = preferences_of(connection, pk, at)
    for category in categories:
        wanted_out, now_out = category in change.categories_out, category in before.categories_out
        if wanted_out != now_out:
            kind = CATEGORY_UNSUBSCRIBED if wanted_out else CATEGORY_RESUBSCRIBED
            record_preference(connection, pk, member_id, kind, at, {"category": category, **said})

    if change.pause_days is not None:
        until = pause_end(at, change.pause_days, zone)
        if before.paused_until != until:
            properties = {"until": until, "days": change.pause_days, **said}
            record_preference(connection, pk, member_id, NUDGES_PAUSED, at, properties)
    elif change.resume and before.paused_until is not None:
        record_preference(connection, pk, member_id, NUDGES_RESUMED, at, dict(said))

    return show_preferences(connection, member_id, categories, now=at, zone=zone)
