"""Synthetic campaigns with a known effect, written straight into the store: sent and
held-out actions with the response window the planner stores, and responders' clicks and
purchases (for the impact tests, integration and functional)."""

from __future__ import annotations

import random
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from audience.facts import EventFact
from store.schema import actions
from tests.integration.community import DAY, Person, add_events, insert_people

AS_OF = date(2026, 3, 2)
FROM = 1_772_409_600  # 2026-03-02 00:00 UTC: the end of the night before the windows
_NOW = datetime(2026, 3, 1)


def action_row(
    campaign_id: str,
    pk: int,
    n: int,
    *,
    holdout: bool,
    as_of: date = AS_OF,
    variant: str | None = None,
    state: str | None = None,
    types: tuple[str, ...] = ("email_clicked",),
) -> dict[str, Any]:
    return {
        "action_id": f"{campaign_id}-{n}",
        "campaign_id": campaign_id,
        "member_pk": pk,
        "occurrence": "once",
        "as_of": as_of,
        "state": state or ("held_out" if holdout else "sent"),
        "holdout": holdout,
        "reward": None,
        "cost_minor": 0,
        "currency": None,
        "template": "thanks",
        "variant": None if holdout else variant,
        "response_types": list(types),
        "response_from": FROM,
        "response_until": FROM + 7 * DAY,
        "created_at": _NOW,
        "updated_at": _NOW,
    }


def world(
    engine: sa.Engine,
    campaign_id: str,
    *,
    treated: int,
    held_out: int,
    rates: tuple[float, float],
    seed: int,
    variants: dict[str, float] | None = None,
) -> dict[str, int]:
    """Members nudged by ``campaign_id`` (treated) or held out, each responding (a click
    inside the window, plus a 20.00 purchase) with the group's rate."""
    rng = random.Random(seed)
    people = [Person(f"{campaign_id}-m{i}", None) for i in range(treated + held_out)]
    rows, clicks = [], []
    names = list(variants or {})
    with engine.begin() as connection:
        keys = insert_people(connection, people)
        for i, person in enumerate(people):
            holdout = i >= treated
            variant = names[i % len(names)] if names and not holdout else None
            rate = (
                rates[1] if holdout else (variants[variant] if variants and variant else rates[0])
            )
            rows.append(
                action_row(campaign_id, keys[person.member_id], i, holdout=holdout, variant=variant)
            )
            if rng.random() < rate:
                clicks.append((person.member_id, EventFact("email_clicked", FROM + DAY)))
                clicks.append((person.member_id, EventFact("purchase", FROM + DAY, 2000, "USD")))
        connection.execute(sa.insert(actions), rows)
        add_events(connection, keys, clicks)
    return keys
