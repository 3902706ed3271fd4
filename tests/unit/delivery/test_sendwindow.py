"""The send window: inside it sends at once, before or after it waits for the next opening,
on the member's clock (DST included), never more than 72 hours ahead."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from delivery.sendwindow import MAX_AHEAD, SendWindow, next_send_instant, send_at_for

WINDOW = SendWindow(time(9), time(18))
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = "America/New_York"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_inside_the_window_sends_now() -> None:
    now = at("2026-06-10T12:00:00+02:00")
    assert next_send_instant(WINDOW, now, "Europe/Paris", PARIS) == now
    assert send_at_for(WINDOW, now, "Europe/Paris", PARIS) is None


def test_before_the_window_waits_for_the_opening_today() -> None:
    now = at("2026-06-10T02:00:00+02:00")  # the nightly run
    assert send_at_for(WINDOW, now, "Europe/Paris", PARIS) == at("2026-06-10T09:00:00+02:00")


def test_after_the_window_waits_for_tomorrow() -> None:
    now = at("2026-06-10T18:00:00+02:00")  # the end is exclusive
    assert send_at_for(WINDOW, now, "Europe/Paris", PARIS) == at("2026-06-11T09:00:00+02:00")


def test_the_members_clock_not_the_business_clock() -> None:
    now = at("2026-06-10T02:00:00+02:00")  # 20:00 the previous evening in New York
    assert send_at_for(WINDOW, now, NEW_YORK, PARIS) == at("2026-06-10T09:00:00-04:00")


def test_business_window_ignores_the_member_zone() -> None:
    window = SendWindow(time(9), time(18), timezone="business")
    now = at("2026-06-10T02:00:00+02:00")
    assert send_at_for(window, now, NEW_YORK, PARIS) == at("2026-06-10T09:00:00+02:00")


@pytest.mark.parametrize("zone", [None, "", "Mars/Olympus_Mons"])
def test_unknown_member_zone_falls_back_to_business(zone: str | None) -> None:
    now = at("2026-06-10T02:00:00+02:00")
    assert send_at_for(WINDOW, now, zone, PARIS) == at("2026-06-10T09:00:00+02:00")


def test_spring_forward_opening_in_the_gap_lands_just_after_it() -> None:
    window = SendWindow(time(2, 30), time(6))
    now = at("2026-03-29T00:30:00+01:00")  # Paris skips 02:00-03:00 that night
    instant = next_send_instant(window, now, "Europe/Paris", PARIS)
    local = instant.astimezone(PARIS)
    assert window.start <= local.time() < window.end
    assert instant > now


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_send_instant(WINDOW, datetime(2026, 1, 1), None, PARIS)


def test_window_must_start_before_it_ends() -> None:
    with pytest.raises(ValueError, match="start"):
        SendWindow(time(18), time(9))


ZONES = [
    "UTC",
    "Europe/Paris",
    "America/New_York",
    "Asia/Kolkata",
    "Pacific/Auckland",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Australia/Lord_Howe",
]


@given(
    st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31)),
    st.sampled_from(ZONES),
    st.integers(0, 22),
    st.integers(1, 8),
)
def test_always_inside_the_window_and_within_72_hours(
    naive: datetime, zone: str, start_hour: int, length: int
) -> None:
    window = SendWindow(time(start_hour), time(min(23, start_hour + length), 59))
    now = naive.replace(tzinfo=UTC)
    instant = next_send_instant(window, now, zone, PARIS)
    assert now <= instant <= now + MAX_AHEAD
    assert instant - now < timedelta(hours=26)
    assert window.start <= instant.astimezone(ZoneInfo(zone)).time() < window.end
