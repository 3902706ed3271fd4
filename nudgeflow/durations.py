"""Durations written in user files: ``14d`` (days) or ``2w`` (weeks), always whole days."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([dw])\s*$")
_UNIT_DAYS = {"d": 1, "w": 7}
# A hundred years: longer than any window, cooldown or expiry makes sense for, and short
# enough that a date plus a duration never leaves the calendar (year 9999).
MAX_DAYS = 36_525


def parse_days(text: str) -> int:
    """Return the number of whole days in ``text`` (``'90d'`` → 90, ``'2w'`` → 14).

    Raises ``ValueError`` with a message fit for a user when the text is not a duration.
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a duration such as '14d' or '2w', got {text!r}")
    digits = match.group(1).lstrip("0")
    days = int(digits or "0") * _UNIT_DAYS[match.group(2)] if len(digits) <= 9 else MAX_DAYS + 1
    if days <= 0:
        raise ValueError(f"a duration must be at least one day, got {text!r}")
    if days > MAX_DAYS:
        raise ValueError(f"a duration may be at most {MAX_DAYS}d (100 years), got {text.strip()!r}")
    return days


def format_days(days: int) -> str:
    """The canonical spelling of a number of days (``14`` → ``'14d'``, ``14`` never ``'2w'``)."""
    return f"{days}d"


def as_timedelta(days: int) -> timedelta:
    return timedelta(days=days)
