"""Builds small communities straight into the store (no importer), for integration tests."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from audience.facts import EventFact, MemberFacts
from store.schema import events, member_tags, members

DAY = 86_400
_NOW = datetime(2026, 1, 1)


@dataclass
class Person:
    member_id: str
    joined_at: int | None
    events: list[EventFact] = field(default_factory=list)
    tags: frozenset[str] = frozenset()
    country: str | None = None

    def facts(self) -> MemberFacts:
        fields = {"email": f"{self.member_id}@example.com"}
        if self.country:
            fields["country"] = self.country
        return MemberFacts(self.joined_at, fields, self.tags, tuple(self.events))


def insert_people(connection: sa.Connection, people: list[Person]) -> dict[str, int]:
    """Insert members, their tags and events; return member_id → primary key."""
    keys: dict[str, int] = {}
    for person in people:
        result = connection.execute(
            sa.insert(members).values(
                member_id=person.member_id,
                email=f"{person.member_id}@example.com",
                joined_at=person.joined_at,
                country=person.country,
                email_opt_in=True,
                row_hash="-",
                created_at=_NOW,
                updated_at=_NOW,
            )
        )
        assert result.inserted_primary_key is not None
        keys[person.member_id] = int(result.inserted_primary_key[0])
    tag_rows = [
        {"member_pk": keys[p.member_id], "tag": t, "source": "import"}
        for p in people
        for t in p.tags
    ]
    if tag_rows:
        connection.execute(sa.insert(member_tags), tag_rows)
    add_events(connection, keys, [(p.member_id, e) for p in people for e in p.events])
    return keys


def add_events(
    connection: sa.Connection, keys: dict[str, int], rows: list[tuple[str, EventFact]]
) -> None:
    start = connection.execute(sa.select(sa.func.count()).select_from(events)).scalar_one()
    values = [
        {
            "event_id": f"e{start + n}",
            "member_pk": keys[member_id],
            "type": e.type,
            "occurred_at": e.occurred_at,
            "amount_minor": e.amount_minor,
            "currency": e.currency,
        }
        for n, (member_id, e) in enumerate(rows)
    ]
    if values:
        connection.execute(sa.insert(events), values)


TYPES = [
    "purchase",
    "purchase",
    "purchase",
    "review_posted",
    "referral_made",
    "community_post",
    "answer_posted",
    "email_clicked",
    "login",
]


def random_community(seed: int, size: int, end: int) -> list[Person]:
    """People with events spread over the two years before ``end`` (and a few after it)."""
    rng = random.Random(seed)
    people = []
    for i in range(size):
        joined = end - rng.randrange(0, 800) * DAY if rng.random() < 0.9 else None
        person = Person(f"m{i:04d}", joined, country=rng.choice([None, "US", "GB"]))
        for _ in range(rng.choice([0, 1, 2, 3, 5, 8, 12])):
            kind = rng.choice(TYPES)
            when = end - rng.randrange(-3 * DAY, 730 * DAY)
            if kind == "purchase":
                currency = rng.choice(["USD", "USD", "USD", "EUR"])
                person.events.append(EventFact(kind, when, rng.randrange(100, 20_000), currency))
            else:
                person.events.append(EventFact(kind, when))
        people.append(person)
    return people
