"""Reading a run's summary defensively: counts are only what the summary really says."""

from __future__ import annotations

import pytest

from store.reports import run_counts


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (None, {}),
        ("not a dict", {}),
        ({"plan": [], "dispatch": "x"}, {}),
        ({"dispatch": {"totals": {"sent": 4}}}, {"sent": 4}),
        # No totals: summed per campaign, but only when every campaign has the key.
        (
            {"dispatch": {"campaigns": [{"sent": 1, "failed": 1}, {"sent": 2}]}},
            {"sent": 3},
        ),
        ({"dispatch": {"totals": {"sent": "4", "failed": True}}}, {}),
        ({"plan": {"campaigns": [{"selected": 2}, {"selected": 5}]}}, {"planned": 7}),
        ({"plan": {"campaigns": [{"selected": 2}, "junk"]}}, {}),
    ],
)
def test_run_counts_read_what_is_there(summary: object, expected: dict[str, int]) -> None:
    counts = run_counts(summary)
    assert set(counts) == {"planned", "held_out", "sent", "failed", "unknown", "rewards_issued"}
    assert {k: v for k, v in counts.items() if v is not None} == expected


def test_the_nights_report_is_preferred_over_dispatch_totals() -> None:
    summary = {
        "plan": {"campaigns": [{"selected": 3}, {"selected": 2}]},
        "dispatch": {"totals": {"sent": 99}},
        "report": [
            {"id": "a", "held_out": 1, "sent": 2, "failed": 0, "unknown": 0, "rewards_issued": 2},
            {"id": "b", "held_out": 0, "sent": 1, "failed": 1, "unknown": 1, "rewards_issued": 0},
        ],
    }
    assert run_counts(summary) == {
        "planned": 5,
        "held_out": 1,
        "sent": 3,
        "failed": 1,
        "unknown": 1,
        "rewards_issued": 2,
    }
