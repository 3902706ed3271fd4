"""The referral guards' facts, set-based: a handful of queries per night whatever the number
of advocates, none per member (``domain.referrals`` decides with them).

For the candidates of the night's referral campaigns (``Campaign.is_referral``):

* tonight's ``referral_converted`` events (the event trigger's window), with the member each
  names in ``referred_member_id``;
* both sides' member rows (member id, email, Stripe customer, when they joined);
* the referred members' first purchase by the night's end, in one grouped query;
* when each referral began: the advocate's earliest ``referral_made`` with the same
  ``referral_id`` (else the referred member's ``joined_at``);
* for a campaign with ``referral.max_rewarded``: the nights its rewards (neither held out
  nor failed) were planned for each advocate inside the limit's window.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Select, false, func, select

from domain.campaign import REFERRAL_CONVERTED, REFERRAL_MADE, Campaign
from domain.referrals import Conversion, Person, Referrals
from domain.triggers import event_window_start
from store.schema import actions, events, members

_CHUNK = 500  # keys per IN list
_PURCHASE = "purchase"
_NOT_REWARDED = ("failed", "held_out")


def _chunks(keys: Iterable[Any]) -> Iterator[list[Any]]:
    ordered = sorted(set(keys))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _each(
    connection: Connection,
    query: Select[Any],
    column: ColumnElement[Any],
    keys: Iterable[Any],
) -> Iterator[Any]:
    for chunk in _chunks(keys):
        yield from connection.execute(query.where(column.in_(chunk)))


def _properties(value: object) -> Mapping[str, Any]:
    """An event's properties as a dict (a JSON column; text if a driver left it so)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = str(value).strip()
    return text or None


def gather_referrals(
    connection: Connection,
    campaigns: Sequence[Campaign],
    candidates: Mapping[str, Sequence[int]],
    as_of: date,
    as_of_end: int,
    previous_as_of: date | None,
    zone: ZoneInfo,
) -> dict[str, dict[int, Referrals]]:
    """campaign id → candidate member_pk → the advocate's referral facts, for every referral
    campaign with candidates tonight (advocates without a conversion are left out)."""
    referral = [c for c in campaigns if c.is_referral and candidates.get(c.id)]
    if not referral:
        return {}
    advocates: set[int] = set()
    for campaign in referral:
        advocates.update(candidates[campaign.id])

    start = event_window_start(as_of, previous_as_of, zone)
    e = events.c
    tonight = select(e.member_pk, e.occurred_at, e.properties).where(
        e.type == REFERRAL_CONVERTED, e.occurred_at >= start, e.occurred_at < as_of_end
    )
    raw: dict[int, list[tuple[int, str | None, str | None]]] = {}
    for pk, at, props in _each(connection, tonight, e.member_pk, advocates):
        p = _properties(props)
        raw.setdefault(pk, []).append(
            (int(at), _text(p.get("referral_id")), _text(p.get("referred_member_id")))
        )
    if not raw:
        return {c.id: {} for c in referral}

    m = members.c
    person = select(m.id, m.member_id, m.email, m.stripe_customer_id, m.joined_at)
    people: dict[int, Person] = {}
    joined: dict[int, int | None] = {}
    by_member_id: dict[str, int] = {}

    def keep(rows: Iterable[Any]) -> None:
        for pk, member_id, email, customer, joined_at in rows:
            people[pk] = Person(pk, member_id, email or "", customer or None)
            joined[pk] = None if joined_at is None else int(joined_at)
            by_member_id[member_id] = pk

    keep(_each(connection, person, m.id, raw))
    named = {n for found in raw.values() for _, _, n in found if n is not None}
    keep(_each(connection, person, m.member_id, named - by_member_id.keys()))

    referred_pks = {by_member_id[n] for n in named if n in by_member_id}
    firsts = (
        select(e.member_pk, func.min(e.occurred_at))
        .where(e.type == _PURCHASE, e.occurred_at < as_of_end)
        .group_by(e.member_pk)
    )
    first_purchase = {
        pk: int(at) for pk, at in _each(connection, firsts, e.member_pk, referred_pks)
    }

    made = select(e.member_pk, e.occurred_at, e.properties).where(
        e.type == REFERRAL_MADE, e.occurred_at < as_of_end
    )
    began: dict[tuple[int, str], int] = {}
    for pk, at, props in _each(connection, made, e.member_pk, raw):
        referral_id = _text(_properties(props).get("referral_id"))
        if referral_id is not None:
            key = (pk, referral_id)
            began[key] = min(int(at), began.get(key, int(at)))

    facts: dict[int, tuple[Person, tuple[Conversion, ...]]] = {}
    for pk, found in raw.items():
        conversions = []
        for at, referral_id, name in sorted(found, key=lambda f: (f[0], f[1] or "", f[2] or "")):
            referred_pk = by_member_id.get(name) if name is not None else None
            since = began.get((pk, referral_id)) if referral_id is not None else None
            if since is None and referred_pk is not None:
                since = joined.get(referred_pk)
            conversions.append(
                Conversion(
                    occurred_at=at,
                    referral_id=referral_id,
                    named=name,
                    referred=people.get(referred_pk) if referred_pk is not None else None,
                    first_purchase_at=first_purchase.get(referred_pk)
                    if referred_pk is not None
                    else None,
                    referred_since=since,
                )
            )
        facts[pk] = (people[pk], tuple(conversions))

    rewarded = _rewarded_nights(connection, referral, facts.keys(), as_of)
    result: dict[str, dict[int, Referrals]] = {}
    for campaign in referral:
        mine = rewarded.get(campaign.id, {})
        result[campaign.id] = {
            pk: Referrals(facts[pk][0], facts[pk][1], tuple(sorted(mine.get(pk, ()))))
            for pk in candidates[campaign.id]
            if pk in facts
        }
    return result


def _rewarded_nights(
    connection: Connection, campaigns: Sequence[Campaign], advocates: Iterable[int], as_of: date
) -> dict[str, dict[int, list[date]]]:
    """campaign → advocate → the nights a reward of the campaign was planned for them
    (neither held out nor failed), inside the campaign's ``referral.max_rewarded`` window."""
    limited = {c.id: c.referral_limit for c in campaigns if c.referral_limit is not None}
    if not limited:
        return {}
    widest = max(limit.per_days for limit in limited.values())
    a = actions.c
    query = select(a.campaign_id, a.member_pk, a.as_of).where(
        a.campaign_id.in_(sorted(limited)),
        a.holdout == false(),
        a.state.not_in(_NOT_REWARDED),
        a.as_of > as_of - timedelta(days=widest),
        a.as_of <= as_of,
    )
    found: dict[str, dict[int, list[date]]] = {}
    for campaign_id, pk, day in _each(connection, query, a.member_pk, advocates):
        night = day if isinstance(day, date) else date.fromisoformat(day)
        found.setdefault(campaign_id, {}).setdefault(pk, []).append(night)
    return found
