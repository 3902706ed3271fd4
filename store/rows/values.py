"""What every import row shares: the errors a bad value raises, and the parsing of text,
required values, length limits and instants that member and event rows both use.

Every value has bounds, so that no row can hold what a database or a later step cannot: a
field is at most ``FIELD_LIMIT`` characters, and an instant lies between 1900 and 2199
(``EARLIEST``, ``LATEST``; years 1 and 9999 are typos or placeholders, not history)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nudgeflow.timeutil import parse_instant

# Longest text the schema stores per column; PostgreSQL would refuse the whole chunk otherwise.
# Other values are capped too (no timestamp or e-mail address is that long).
_MAX_LENGTH = {
    "member_id": 200,
    "event_id": 200,
    "type": 64,
    "first_name": 200,
    "last_name": 200,
    "country": 64,
    "stripe_customer_id": 200,
}
_DEFAULT_MAX_LENGTH = 1000
# Any one field, whatever its column (attributes and ``properties`` included).
FIELD_LIMIT = 65_536
EARLIEST = -2_208_988_800  # 1900-01-01T00:00:00Z
LATEST = 7_258_118_400  # 2200-01-01T00:00:00Z, the first instant refused


class RowError(ValueError):
    """One bad value in one record; ``str()`` gives ``field: reason``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[RowError], tuple[str, str]]:
        return RowError, (self.field, self.reason)  # rows checked in another process


@dataclass(frozen=True)
class RowProblem:
    """A rejected row (or a warning about one), located by file and line."""

    path: str
    line: int
    field: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        prefix = "warning: " if self.warning else ""
        return f"{self.path}:{self.line}: {self.field}: {prefix}{self.message}"


def json_scalar(value: Any) -> str | None:
    """JSON Lines values as text: ``true`` → ``'true'``, ``12.5`` → ``'12.5'``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def text_value(field: str, value: Any) -> str | None:
    """A stripped string, or ``None`` for an empty value; longer than ``FIELD_LIMIT``: refused."""
    if value.__class__ is not str:
        value = json_scalar(value)
        if value is None:
            return None
    text: str = value.strip()
    if len(text) > FIELD_LIMIT:
        raise RowError(field, f"longer than {FIELD_LIMIT:,} characters")
    return text or None


def required_value(field: str, value: Any) -> str:
    if value.__class__ is str:  # the fast path: a CSV cell that is fine as it is
        stripped: str = value.strip()
        if stripped and len(stripped) <= _MAX_LENGTH.get(field, _DEFAULT_MAX_LENGTH):
            return stripped
    text = text_value(field, value)
    if text is None:
        raise RowError(field, "required")
    return limited(field, text)


def limited(field: str, text: str) -> str:
    limit = _MAX_LENGTH.get(field, _DEFAULT_MAX_LENGTH)
    if len(text) > limit:
        raise RowError(field, f"longer than {limit} characters")
    return text


def instant_seconds(field: str, text: str) -> int:
    """An ISO 8601 date or time as epoch seconds (naive means UTC), from 1900 to 2199."""
    try:
        # Python reads most ISO 8601 (a final "Z" too) itself; ``parse_instant`` does the rest
        # and gives the same instant for what both read, at three times the cost.
        moment = _FROM_ISO(text)
        if moment.tzinfo is None:  # naive means UTC
            moment = moment.replace(tzinfo=UTC)
        seconds = int(moment.timestamp())
    except (ValueError, OverflowError):
        try:
            seconds = parse_instant(text)
        except (ValueError, OverflowError):
            raise RowError(field, f"expected an ISO 8601 date or time, got {text!r}") from None
    if not EARLIEST <= seconds < LATEST:
        raise RowError(field, f"outside the years 1900 to 2199: {text!r}")
    return seconds


_FROM_ISO = datetime.fromisoformat


def refuse_nul(field: str, text: str) -> None:
    # PostgreSQL cannot store NUL in text or JSONB; refuse it on every database alike.
    if "\\u0000" in text:
        raise RowError(field, "contains a NUL character")
