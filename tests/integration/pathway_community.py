"""A small crafted community on a retention-to-advocacy pathway, with known figures
(business zone Europe/Paris, as of 2026-06-30)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from audience.facts import EventFact
from audience.pathways import Pathway, PathwaySpec
from store.schema import stage_history
from tests.integration.community import Person, insert_people

ZONE = ZoneInfo("Europe/Paris")
AS_OF = date(2026, 6, 30)
STAGES = ("adopter", "loyalist", "advocate")

PATHWAY_FILE = {
    "id": "retention-to-advocacy",
    "name": "Retention to advocacy",
    "start": {"stage": "loyalist"},
    "key_actions": [
        {"id": "answered", "events": {"type": "answer_posted", "min": 1}},
        {"id": "guest-post", "events": {"type": "guest_post"}},
    ],
    "end": {"events": {"type": ["answer_posted", "guest_post", "review_posted"], "min": 3}},
    "target_impact": "Advocates who bring referrals",
    "indicators": [
        {"id": "purchases", "events": {"type": "purchase"}},
        {"id": "retained", "retention": {"within": "90d"}},
    ],
}


def pathway() -> Pathway:
    return PathwaySpec.model_validate(PATHWAY_FILE).compile(STAGES, "test")


def at(year: int, month: int, day: int, hour: int = 12) -> int:
    """An instant, Paris time."""
    return int(datetime(year, month, day, hour, tzinfo=ZONE).timestamp())


def _e(kind: str, instant: int) -> EventFact:
    return EventFact(kind, instant)


PEOPLE = [
    # Loyalist from 1 March; an answer before the start does not count; ends 10 April.
    Person(
        "m1",
        at(2025, 1, 1),
        [
            _e("answer_posted", at(2026, 2, 15)),
            _e("answer_posted", at(2026, 3, 10)),
            _e("guest_post", at(2026, 3, 20)),
            _e("review_posted", at(2026, 4, 10)),
            _e("purchase", at(2026, 1, 5)),
            _e("purchase", at(2026, 5, 1)),
        ],
    ),
    # Loyalist from 1 May, answered on that day: done answered, not guest-post.
    Person(
        "m2",
        at(2025, 1, 1),
        [_e("answer_posted", at(2026, 5, 1, 8)), _e("purchase", at(2026, 1, 10))],
    ),
    # Straight to advocate on 1 April (above loyalist: started), three guest posts: ended.
    Person(
        "m3",
        at(2025, 1, 1),
        [
            _e("guest_post", at(2026, 4, 2)),
            _e("guest_post", at(2026, 4, 3)),
            _e("guest_post", at(2026, 4, 4)),
        ],
    ),
    # Adopter only: not on the pathway.
    Person(
        "m4",
        at(2025, 1, 1),
        [
            _e("purchase", at(2026, 1, 1)),
            _e("purchase", at(2026, 2, 1)),
            _e("purchase", at(2026, 6, 1)),
        ],
    ),
    # Loyalist only after the as-of date: not on it yet.
    Person("m5", at(2025, 1, 1), [_e("purchase", at(2026, 6, 20))]),
    # Loyalist in June, dropped back: started all the same, nothing done.
    Person("m6", at(2025, 1, 1), []),
]

# (member, stage, entered_on, left_on, initial)
HISTORY = [
    ("m1", "adopter", date(2025, 6, 1), date(2026, 3, 1), True),
    ("m1", "loyalist", date(2026, 3, 1), None, False),
    ("m2", "adopter", date(2026, 1, 1), date(2026, 5, 1), False),
    ("m2", "loyalist", date(2026, 5, 1), None, False),
    ("m3", "adopter", date(2026, 1, 1), date(2026, 4, 1), False),
    ("m3", "advocate", date(2026, 4, 1), None, False),
    ("m4", "adopter", date(2026, 1, 1), None, False),
    ("m5", "adopter", date(2026, 1, 1), date(2026, 7, 5), False),
    ("m5", "loyalist", date(2026, 7, 5), None, False),
    ("m6", "adopter", date(2026, 1, 1), date(2026, 6, 1), False),
    ("m6", "loyalist", date(2026, 6, 1), date(2026, 6, 15), False),
    ("m6", "adopter", date(2026, 6, 15), None, False),
]


def build(engine: sa.Engine) -> dict[str, int]:
    """Insert the community; member_id → primary key."""
    with engine.begin() as connection:
        keys = insert_people(connection, PEOPLE)
        connection.execute(
            sa.insert(stage_history),
            [
                {
                    "member_pk": keys[m],
                    "stage": stage,
                    "entered_on": entered,
                    "left_on": left,
                    "initial": initial,
                }
                for m, stage, entered, left, initial in HISTORY
            ],
        )
    return keys
