"""The business dates a command accepts: from 1970-01-01 (instants are seconds since then)
to a year after today; outside that, a ``ValueError`` that says the range."""

from __future__ import annotations

from datetime import date

import pytest

from nudgeflow.timeutil import check_business_date, latest_business_date

TODAY = date(2026, 11, 29)


@pytest.mark.parametrize("day", [date(1970, 1, 1), TODAY, date(2027, 11, 29)])
def test_dates_in_range_are_kept(day: date) -> None:
    assert check_business_date(day, TODAY) == day


@pytest.mark.parametrize("day", [date(1, 1, 1), date(1969, 12, 31), date(2027, 11, 30)])
def test_dates_out_of_range_say_the_range(day: date) -> None:
    with pytest.raises(ValueError, match="out of range") as caught:
        check_business_date(day, TODAY)
    assert str(caught.value) == (
        f"{day.isoformat()} is out of range: use a date from 1970-01-01 to 2027-11-29 "
        "(a year from today)"
    )


def test_the_last_date_of_the_year_far_end_never_overflows() -> None:
    with pytest.raises(ValueError, match="out of range"):
        check_business_date(date(9999, 12, 31), TODAY)


def test_a_year_after_29_february_is_28_february() -> None:
    assert latest_business_date(date(2028, 2, 29)) == date(2029, 2, 28)
    assert latest_business_date(date(2027, 3, 1)) == date(2028, 3, 1)
