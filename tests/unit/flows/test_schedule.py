"""The schedule of the nightly deployment: which night a run works on, the cron in the
business time zone, and the check for a Prefect server (no flow runs here)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from flows.schedule import (
    PrefectServerUnavailable,
    check_prefect_server,
    next_run_times,
    nightly_schedule,
)
from nudgeflow.errors import SettingsError
from nudgeflow.timeutil import previous_business_day
from tests.fakes.prefect_health import closed_port_url, health_server

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # 02:00 in New York, winter (UTC-5) and summer (UTC-4).
        (utc(2026, 1, 15, 7, 0), NEW_YORK, date(2026, 1, 14)),
        (utc(2026, 7, 15, 6, 0), NEW_YORK, date(2026, 7, 14)),
        # Spring forward, 8 March 2026: 02:00 does not exist; whether the run comes at
        # 01:00 EST or 03:00 EDT, it works on the 7th.
        (utc(2026, 3, 8, 6, 0), NEW_YORK, date(2026, 3, 7)),
        (utc(2026, 3, 8, 7, 0), NEW_YORK, date(2026, 3, 7)),
        # Fall back, 1 November 2026: both 01:30s and the 02:00 after them.
        (utc(2026, 11, 1, 5, 30), NEW_YORK, date(2026, 10, 31)),
        (utc(2026, 11, 1, 6, 30), NEW_YORK, date(2026, 10, 31)),
        (utc(2026, 11, 1, 7, 0), NEW_YORK, date(2026, 10, 31)),
        # One instant, three zones: the business zone decides the day.
        (utc(2026, 5, 1, 23, 30), PARIS, date(2026, 5, 1)),
        (utc(2026, 5, 1, 23, 30), ZoneInfo("UTC"), date(2026, 4, 30)),
        (utc(2026, 5, 1, 23, 30), NEW_YORK, date(2026, 4, 30)),
        # Midnight ends the day; a second before, it has not ended yet.
        (datetime(2026, 5, 2, 0, 0, tzinfo=PARIS), PARIS, date(2026, 5, 1)),
        (datetime(2026, 5, 1, 23, 59, 59, tzinfo=PARIS), PARIS, date(2026, 4, 30)),
        # Across the year and a leap day.
        (datetime(2027, 1, 1, 2, 0, tzinfo=NEW_YORK), NEW_YORK, date(2026, 12, 31)),
        (datetime(2028, 3, 1, 2, 0, tzinfo=NEW_YORK), NEW_YORK, date(2028, 2, 29)),
    ],
)
def test_previous_business_day(instant: datetime, zone: ZoneInfo, expected: date) -> None:
    assert previous_business_day(instant, zone) == expected


def test_a_naive_instant_is_utc() -> None:
    assert previous_business_day(datetime(2026, 5, 1, 23, 30), PARIS) == date(2026, 5, 1)


@pytest.mark.parametrize(("cron", "zone"), [("0 2 * * *", NEW_YORK), ("30 2 * * *", PARIS)])
def test_a_year_of_scheduled_runs_covers_every_night_once(cron: str, zone: ZoneInfo) -> None:
    """The times Prefect's own scheduler picks, DST nights included, map one to one onto
    consecutive business days: no night skipped, none run twice."""
    runs = next_run_times(cron, zone.key, count=366, after=utc(2026, 1, 1))
    nights = [previous_business_day(run, zone) for run in runs]
    assert nights[0] == date(2025, 12, 31)
    assert nights == [nights[0] + timedelta(days=n) for n in range(len(runs))]


def test_next_run_times_are_in_the_business_zone() -> None:
    runs = next_run_times("0 2 * * *", "America/New_York", after=utc(2026, 3, 6, 12))
    assert len(runs) == 3
    assert [run.date() for run in runs] == [date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 9)]
    assert all(run.tzinfo == NEW_YORK for run in runs)
    assert runs[0].hour == runs[2].hour == 2


def test_the_schedule_carries_the_cron_and_zone() -> None:
    schedule = nightly_schedule("0 2 * * *", "America/New_York")
    assert (schedule.cron, schedule.timezone) == ("0 2 * * *", "America/New_York")


@pytest.mark.parametrize("cron", ["0 2 * *", "61 2 * * *", "0 25 * * *", "", "every night"])
def test_a_bad_cron_names_the_setting_and_the_option(cron: str) -> None:
    with pytest.raises(SettingsError) as caught:
        nightly_schedule(cron, "UTC")
    message = str(caught.value)
    assert "NUDGEFLOW_SCHEDULE__CRON" in message
    assert "--cron" in message
    assert repr(cron) in message
    assert caught.value.exit_code == 2
    assert "\n" not in message


def test_no_api_url_says_how_to_start_a_server() -> None:
    with pytest.raises(PrefectServerUnavailable) as caught:
        check_prefect_server(None)
    assert "PREFECT_API_URL is not set" in str(caught.value)
    assert "prefect server start" in str(caught.value)
    assert caught.value.exit_code == 1


def test_nothing_listening_says_how_to_start_a_server() -> None:
    url = closed_port_url()
    with pytest.raises(PrefectServerUnavailable) as caught:
        check_prefect_server(url, timeout=1.0)
    assert url in str(caught.value)
    assert "prefect server start" in str(caught.value)


def test_an_unhealthy_answer_is_not_a_server() -> None:
    with health_server(status=503) as url, pytest.raises(PrefectServerUnavailable) as caught:
        check_prefect_server(url)
    assert "HTTP 503" in str(caught.value)


def test_a_healthy_server_passes() -> None:
    with health_server() as url:
        assert check_prefect_server(url + "/") == url + "/"
