"""The pure reference of the refresh: stages, engagement score, segments."""

from __future__ import annotations

import pytest

from audience.facts import EventFact, MemberFacts
from audience.lifecycle import (
    LifecycleSpec,
    Rfm,
    Scoring,
    Segment,
    engagement_score,
    segment_of,
    stage_of,
)

DAY = 86_400
END = 1_000 * DAY

LADDER = LifecycleSpec.model_validate(
    {
        "stages": [
            {"id": "adopter", "when": {"events": {"type": "purchase", "min": 1}}},
            {
                "id": "loyalist",
                "when": {"events": {"type": "purchase", "min": 3, "within": "365d"}},
            },
            {"id": "advocate", "when": {"events": {"type": ["review_posted"], "min": 3}}},
        ],
        "scoring": {"points": {"purchase": 10}, "expire_after": "180d"},
    }
).compile()


def _member(*events: tuple[str, int]) -> MemberFacts:
    return MemberFacts(
        joined_at=0,
        fields={},
        tags=frozenset(),
        events=tuple(EventFact(t, END - age * DAY) for t, age in events),
    )


def test_highest_stage_whose_rule_holds_wins() -> None:
    assert stage_of(LADDER, _member(), END) is None
    assert stage_of(LADDER, _member(("purchase", 400)), END) == "adopter"
    assert stage_of(LADDER, _member(*[("purchase", 10)] * 3), END) == "loyalist"
    # Not strictly linear: three reviews without recent purchases still make an advocate.
    assert stage_of(LADDER, _member(*[("review_posted", 700)] * 3), END) == "advocate"


def test_a_stage_can_be_lost_when_purchases_age_out() -> None:
    member = _member(*[("purchase", 300)] * 3)
    assert stage_of(LADDER, member, END) == "loyalist"
    assert stage_of(LADDER, member, END + 70 * DAY) == "adopter"


def test_points_expire_after_the_period() -> None:
    scoring = Scoring((("purchase", 10.0), ("review_posted", 25.0)), 180, None)
    events = [EventFact("purchase", END - 180 * DAY), EventFact("purchase", END - 181 * DAY)]
    events.append(EventFact("review_posted", END - DAY))
    events.append(EventFact("login", END - DAY))  # no points
    events.append(EventFact("purchase", END))  # after the end of the day: not yet
    assert engagement_score(scoring, events, END) == 35.0


def test_points_halve_every_half_life() -> None:
    scoring = Scoring((("purchase", 8.0),), None, 90)
    events = [EventFact("purchase", END), EventFact("purchase", END - 90 * DAY)]
    assert engagement_score(scoring, events[1:], END) == pytest.approx(4.0)
    assert engagement_score(scoring, [EventFact("purchase", END - 180 * DAY)], END) == 2.0


def test_the_first_matching_segment_wins() -> None:
    rfm = Rfm(
        365, (Segment("champions", (4, 5), (4, 5), (4, 5)), Segment("loyal", None, (3, 5), None))
    )
    assert segment_of(rfm, 5, 5, 5) == "champions"
    assert segment_of(rfm, 1, 4, 5) == "loyal"
    assert segment_of(rfm, 1, 1, 1) is None
    assert segment_of(rfm, None, None, None) is None
