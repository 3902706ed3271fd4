"""Instants and business days.

Instants are stored as whole seconds since the Unix epoch, UTC (``int``). A business day
``D`` in time zone ``Z`` ends at midnight starting ``D + 1`` in ``Z``; "as of D" means
"everything that happened before that instant".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SECONDS_PER_DAY = 86_400

# The one clock: the composition root builds it and hands it down; nothing below the entry
# points reads the time of day itself. Tests and replays pass a fixed or stepping clock.
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC (the production ``Clock``)."""
    return datetime.now(UTC)


def to_epoch(moment: datetime) -> int:
    """Seconds since the epoch; a naive ``datetime`` is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def day_end(day: date, zone: ZoneInfo) -> int:
    """The instant (epoch seconds) at which business day ``day`` ends in ``zone``."""
    return to_epoch(datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone))


def day_start(day: date, zone: ZoneInfo) -> int:
    return to_epoch(datetime.combine(day, time(0), tzinfo=zone))


def business_date(seconds: int, zone: ZoneInfo) -> date:
    """The business day in ``zone`` that contains the instant."""
    return from_epoch(seconds).astimezone(zone).date()


def parse_instant(text: str) -> int:
    """Parse ISO 8601 (a date alone means its midnight; naive means UTC) to epoch seconds."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date or time, got {text!r}") from None
    return to_epoch(moment)


def previous_business_day(instant: datetime, zone: ZoneInfo) -> date:
    """The last business day in ``zone`` that has fully ended at ``instant`` ("yesterday").

    A run due at 02:00 on 8 March works on 7 March, whatever the offset that night; a naive
    ``instant`` is taken to be UTC.
    """
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(zone).date() - timedelta(days=1)


# The business dates a command accepts: instants are seconds since 1970 (so nothing earlier
# can be stored), and a year ahead is room enough to rehearse a campaign; anything outside
# is a typo, and far enough out it would overflow ``date`` (9999-12-31 has no next day).
EARLIEST_BUSINESS_DATE = date(1970, 1, 1)


def latest_business_date(today: date) -> date:
    """A year after ``today`` (28 February for a 29 February)."""
    try:
        return today.replace(year=today.year + 1)
    except ValueError:
        return today.replace(year=today.year + 1, day=28)


def check_business_date(day: date, today: date) -> date:
    """``day`` if it lies from 1970-01-01 to a year after ``today``; else ``ValueError``
    saying the range."""
    latest = latest_business_date(today)
    if not EARLIEST_BUSINESS_DATE <= day <= latest:
        raise ValueError(
            f"{day.isoformat()} is out of range: use a date from "
            f"{EARLIEST_BUSINESS_DATE.isoformat()} to {latest.isoformat()} (a year from today)"
        )
    return day
