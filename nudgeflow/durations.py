"""Durations written in user files: ``14d`` (days) or ``2w`` (weeks), always whole days."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([dw])\s*$")
_UNIT_DAYS = {"d": 1, "w": 7}


def parse_days(text: str) -> int:
    """Return the number of whole days in ``text`` (``'90d'`` → 90, ``'2w'`` → 14).

    Raises ``ValueError`` with a message fit for a user when the text is not a duration.
    """
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"expected a duration such as '14d' or '2w', got {text!r}")
    days = int(match.group(1)) * _UNIT_DAYS[match.group(2)]
    if days <= 0:
        raise ValueError(f"a duration must be at least one day, got {text!r}")
    return days


def format_days(days: int) -> str:
    """The canonical spelling of a number of days (``14`` → ``'14d'``, ``14`` never ``'2w'``)."""
    return f"{days}d"


def as_timedelta(days: int) -> timedelta:
    return timedelta(days=days)
