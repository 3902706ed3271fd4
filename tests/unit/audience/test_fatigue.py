"""Nudge fatigue: when unanswered nudges tag a member, and how long the rest lasts."""

from __future__ import annotations

from datetime import date

import pytest

from audience.fatigue import Nudge, is_fatigued, is_resting, rest_until

END = 1_000_000  # as_of_end, epoch seconds
CLOSED = Nudge(response_until=END, responded=False)  # closes exactly at the end of the night
OPEN = Nudge(response_until=END + 1, responded=False)
ANSWERED = Nudge(response_until=END - 10, responded=True)


def test_fatigued_after_the_last_n_nudges_went_unanswered() -> None:
    assert is_fatigued([CLOSED] * 3, 3, END)
    assert is_fatigued([CLOSED] * 3 + [ANSWERED], 3, END)


def test_not_fatigued_with_fewer_nudges_than_the_threshold() -> None:
    assert not is_fatigued([], 3, END)
    assert not is_fatigued([CLOSED] * 2, 3, END)


def test_a_response_among_the_last_n_breaks_the_run() -> None:
    assert not is_fatigued([CLOSED, ANSWERED, CLOSED], 3, END)
    assert not is_fatigued([ANSWERED, CLOSED, CLOSED, CLOSED], 3, END)


def test_an_open_unanswered_window_is_skipped_not_counted() -> None:
    assert not is_fatigued([OPEN, CLOSED, CLOSED], 3, END)
    assert not is_fatigued([CLOSED, CLOSED, OPEN], 3, END)
    # The same nudges once the window has closed.
    assert is_fatigued([OPEN, CLOSED, CLOSED], 3, END + 1)
    # Members nudged again before the last window closes are still rested.
    assert is_fatigued([OPEN, OPEN, CLOSED, CLOSED, CLOSED], 3, END)


def test_a_response_inside_a_still_open_window_counts() -> None:
    assert not is_fatigued([Nudge(END + 100, True), CLOSED, CLOSED], 3, END + 200)


def test_threshold_of_one() -> None:
    assert is_fatigued([CLOSED, ANSWERED], 1, END)
    assert not is_fatigued([ANSWERED, CLOSED], 1, END)


def test_threshold_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        is_fatigued([CLOSED], 0, END)


def test_rest_runs_through_the_last_day_and_ends_the_day_after() -> None:
    tagged = date(2026, 1, 10)
    until = rest_until(tagged, 90)
    assert until == date(2026, 4, 9)  # D + 89
    assert is_resting(until, date(2026, 1, 11))  # D + 1
    assert is_resting(until, date(2026, 4, 9))  # D + 89
    assert not is_resting(until, date(2026, 4, 10))  # D + 90: eligible again
    assert rest_until(tagged, 1) == tagged  # a one-day rest is over by the next night


def test_rest_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        rest_until(date(2026, 1, 1), 0)
