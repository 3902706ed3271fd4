"""The columns of import files: the built-in member and event columns, and the check of a
CSV header against them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Kind = Literal["members", "events"]

MEMBER_COLUMNS = (
    "member_id",
    "email",
    "first_name",
    "last_name",
    "joined_at",
    "birthday",
    "country",
    "timezone",
    "tags",
    "stripe_customer_id",
    "email_opt_in",
)
EVENT_COLUMNS = ("event_id", "member_id", "type", "occurred_at", "amount", "currency", "properties")
REQUIRED = {"members": ("member_id", "email"), "events": EVENT_COLUMNS[:4]}
KNOWN = {"members": MEMBER_COLUMNS, "events": EVENT_COLUMNS}


def check_columns(names: Iterable[str], kind: Kind) -> list[str]:
    """Return a CSV header's column names (built-ins lower-cased); raise ``ValueError``."""
    columns: list[str] = []
    for position, raw in enumerate(names, start=1):
        name = column_name(raw)
        if not name:
            raise ValueError(f"column {position} has no name")
        if name in columns:
            first = columns.index(name) + 1
            raise ValueError(f"duplicate column {name!r} (columns {first} and {position})")
        if kind == "events" and name not in EVENT_COLUMNS:
            raise ValueError(
                f"unknown column {name!r}; events files have: {', '.join(EVENT_COLUMNS)}"
            )
        columns.append(name)
    missing = [name for name in REQUIRED[kind] if name not in columns]
    if missing:
        raise ValueError(f"missing required column {', '.join(map(repr, missing))}")
    return columns


def column_name(raw: str) -> str:
    """Built-in columns match whatever their case; other names are kept as written."""
    name = raw.strip()
    lowered = name.lower()
    return lowered if lowered in MEMBER_COLUMNS or lowered in EVENT_COLUMNS else name
