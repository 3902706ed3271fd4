"""The backtest's pure figures: nights summed per campaign and ISO week, and two backtests
side by side."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from domain.backtest import (
    TOTAL,
    CampaignNight,
    compare,
    iso_week,
    summarise,
)

SUNDAY = date(2026, 5, 10)  # the last day of ISO week 19


def night(day: date, campaign: str = "c", **figures: object) -> CampaignNight:
    return CampaignNight(campaign, day, **figures)  # type: ignore[arg-type]


def test_iso_weeks_start_on_monday_and_belong_to_their_iso_year() -> None:
    assert iso_week(SUNDAY) == "2026-W19"
    assert iso_week(SUNDAY + timedelta(days=1)) == "2026-W20"
    assert iso_week(date(2027, 1, 1)) == "2026-W53"  # a Friday: still 2026's last week


def test_nights_are_summed_per_week_with_a_total() -> None:
    nights = [
        night(
            SUNDAY - timedelta(days=1),
            selected=2,
            held_out=1,
            excluded={"consent": 1},
            cost_minor=500,
            currency="USD",
            budget_left_minor=1500,
            fatigue_tags=1,
        ),
        night(
            SUNDAY,
            selected=1,
            excluded={"consent": 0, "frequency_cap": 2, "budget": 1},
            cost_minor=250,
            currency="USD",
            budget_left_minor=1250,
        ),
        night(
            SUNDAY + timedelta(days=1),
            selected=0,
            excluded={"budget": 4},
            currency="USD",
            budget_left_minor=1250,
        ),
    ]
    (summary,) = summarise(reversed(nights))
    week19, week20 = summary.weeks
    assert (week19.week, week19.first, week19.last, week19.nights) == (
        "2026-W19",
        SUNDAY - timedelta(days=1),
        SUNDAY,
        2,
    )
    assert (week19.selected, week19.held_out, week19.fatigue_tags) == (3, 1, 1)
    # Reasons keep the planner's order; those that removed nobody are left out.
    assert list(week19.excluded.items()) == [("consent", 1), ("frequency_cap", 2), ("budget", 1)]
    assert week19.frequency_caps_hit == 2
    assert (week19.cost_minor, week19.currency, week19.budget_left_minor) == (750, "USD", 1250)
    assert (week20.week, week20.excluded, week20.cost_minor) == ("2026-W20", {"budget": 4}, 0)
    total = summary.total
    assert (total.week, total.nights, total.selected, total.cost_minor) == (TOTAL, 3, 3, 750)
    assert total.excluded == {"consent": 1, "frequency_cap": 2, "budget": 5}
    assert total.budget_left_minor == 1250  # after the last night
    assert total.as_dict()["cost"] == {"minor": 750, "currency": "USD", "text": "7.50 USD"}
    assert total.as_dict()["frequency_caps_hit"] == 2


def test_campaigns_come_in_the_order_given_then_by_id() -> None:
    nights = [night(SUNDAY, c) for c in ("zed", "alpha", "mid")]
    assert [s.campaign_id for s in summarise(nights, order=["mid"])] == ["mid", "alpha", "zed"]


def test_two_backtests_side_by_side_with_the_difference() -> None:
    a = summarise(
        [
            night(
                SUNDAY, "gift", selected=2, excluded={"budget": 3}, cost_minor=1000, currency="USD"
            ),
            night(SUNDAY, "daily", selected=4),
        ]
    )
    b = summarise(
        [
            night(
                SUNDAY,
                "gift",
                selected=3,
                excluded={"lower_priority": 1},
                cost_minor=1500,
                currency="USD",
            ),
        ]
    )
    rows = {(r.campaign_id, r.week, r.measure): r for r in compare(a, b)}
    assert [
        (r.a, r.b, r.difference)
        for r in (
            rows[("gift", "2026-W19", "selected")],
            rows[("gift", "2026-W19", "excluded: budget")],
            rows[("gift", "2026-W19", "excluded: lower_priority")],
            rows[("gift", TOTAL, "reward cost")],
            rows[("daily", TOTAL, "selected")],
        )
    ] == [(2, 3, 1), (3, 0, -3), (0, 1, 1), (1000, 1500, 500), (4, None, -4)]
    assert rows[("gift", TOTAL, "reward cost")].currency == "USD"
    assert rows[("gift", TOTAL, "selected")].currency is None
    # Every week of a campaign, then its total; the measures in a fixed order.
    gift = [r for r in compare(a, b) if r.campaign_id == "gift"]
    assert [r.week for r in gift][-1] == TOTAL
    assert [r.measure for r in gift if r.week == TOTAL] == [
        "selected",
        "held out",
        "excluded: budget",
        "excluded: lower_priority",
        "fatigue tags",
        "reward cost",
    ]


@given(
    st.lists(
        st.tuples(st.integers(0, 60), st.integers(0, 50), st.integers(0, 50)),
        min_size=1,
        max_size=40,
    )
)
def test_weeks_add_up_to_the_total(rows: list[tuple[int, int, int]]) -> None:
    nights = [
        night(SUNDAY + timedelta(days=d), selected=s, excluded={"consent": x}) for d, s, x in rows
    ]
    (summary,) = summarise(nights)
    assert sum(w.selected for w in summary.weeks) == summary.total.selected
    assert sum(w.excluded.get("consent", 0) for w in summary.weeks) == summary.total.excluded.get(
        "consent", 0
    )
    assert (
        sum(w.nights for w in summary.weeks) == summary.total.nights == len({d for d, _, _ in rows})
    )
    weeks = [w.week for w in summary.weeks]
    assert weeks == sorted(set(weeks))
