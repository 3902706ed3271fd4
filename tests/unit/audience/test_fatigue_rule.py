"""Properties of the pure fatigue rule: the most recent closed nudges decide, nudges still
inside their window count neither for nor against, and a daily nudge with a one-day window
rests a member after ``unanswered_nudges`` nights like any other."""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from audience.fatigue import Nudge, is_fatigued
from nudgeflow.timeutil import day_end

END = 1_000_000
DAY = 86_400
PARIS = ZoneInfo("Europe/Paris")

nudges = st.builds(
    Nudge,
    response_until=st.integers(END - 10 * DAY, END + 10 * DAY),
    responded=st.booleans(),
)
histories = st.lists(nudges, max_size=12)
thresholds = st.integers(1, 6)


def decided_by_the_definition(history: list[Nudge], n: int, end: int) -> bool:
    """The rule as the issue words it: walking newest first up to the n-th nudge whose
    window has closed, none was answered (answers to open windows included)."""
    closed = [i for i, x in enumerate(history) if x.response_until <= end]
    if len(closed) < n:
        return False
    return not any(x.responded for x in history[: closed[n - 1] + 1])


@given(histories, thresholds)
def test_the_n_most_recent_closed_nudges_decide(history: list[Nudge], n: int) -> None:
    assert is_fatigued(history, n, END) == decided_by_the_definition(history, n, END)


@given(histories, thresholds, st.integers(0, 12), st.integers(1, 10 * DAY))
def test_an_unanswered_nudge_inside_its_window_changes_nothing(
    history: list[Nudge], n: int, at: int, open_for: int
) -> None:
    still_open = Nudge(response_until=END + open_for, responded=False)
    position = min(at, len(history))
    with_it = [*history[:position], still_open, *history[position:]]
    assert is_fatigued(with_it, n, END) == is_fatigued(history, n, END)


@given(histories, thresholds)
def test_a_newer_unanswered_closed_nudge_never_ends_fatigue(history: list[Nudge], n: int) -> None:
    if is_fatigued(history, n, END):
        assert is_fatigued([Nudge(END, False), *history], n, END)


@given(histories, thresholds, st.integers(END - 10 * DAY, END + 10 * DAY))
def test_an_answered_newest_nudge_is_never_fatigued(
    history: list[Nudge], n: int, until: int
) -> None:
    assert not is_fatigued([Nudge(until, True), *history], n, END)


@given(st.integers(1, 8), st.integers(0, 10))
def test_a_daily_nudge_with_a_one_day_window(n: int, nights: int) -> None:
    """Nudged every night from D - nights to D, each window closing a day after it opened:
    on D every nudge but tonight's has closed, so ``nights`` of them count."""
    d = date(2026, 3, 31)
    as_of_end = day_end(d, PARIS)
    history = [
        Nudge(day_end(d - timedelta(days=k), PARIS) + DAY, responded=False)
        for k in range(nights + 1)
    ]
    assert is_fatigued(history, n, as_of_end) == (nights >= n)
