"""Pydantic field types shared by every user-file spec: durations, money, counts,
one-or-many lists.

Values are held to what makes sense in a campaign file, so that nothing absurd reaches the
planner, the database or a date: durations from 1 day to 100 years (``MAX_DAYS``), amounts
of money up to ``MAX_MONEY_MINOR`` minor units (positive where a cost or budget is meant),
counts up to ``MAX_COUNT``, and finite numbers only (``.inf`` and ``.nan`` are refused).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from nudgeflow.durations import format_days, parse_days
from nudgeflow.money import Money

# Every spec: unknown keys are errors, numbers are finite, and each field's docstring is its
# description in the JSON Schema.
STRICT = ConfigDict(
    extra="forbid",
    frozen=True,
    populate_by_name=True,
    allow_inf_nan=False,
    use_attribute_docstrings=True,
)

# Ten billion in a two-decimal currency: more than any reward or budget, and far from the
# 64-bit integers the ledger stores amounts in.
MAX_MONEY_MINOR = 10**12
MAX_COUNT = 1_000_000


def _days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a duration such as '14d' or '2w', got {value!r}")
    return parse_days(value)


def _money(value: Any) -> Money:
    if isinstance(value, Money):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an amount and a currency such as '10.00 USD', got {value!r}")
    money = Money.parse(value)
    if abs(money.amount_minor) > MAX_MONEY_MINOR:
        limit = Money(MAX_MONEY_MINOR, money.currency)
        raise ValueError(f"an amount may be at most {limit}, got {value!r}")
    return money


def _positive(money: Money) -> Money:
    if money.amount_minor <= 0:
        raise ValueError(f"must be more than zero, got '{money}'")
    return money


def _not_negative(money: Money) -> Money:
    if money.amount_minor < 0:
        raise ValueError(f"must not be negative, got '{money}'")
    return money


def _iso_date(value: Any) -> date:
    # The YAML loader hands dates over as ISO text (planning.sourcefile).
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a date such as 2026-12-01, got {value!r}")


def _listify(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Days = Annotated[
    int,
    BeforeValidator(_days),
    PlainSerializer(format_days, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+[dw]$", "examples": ["14d", "2w"]}),
]
MoneyField = Annotated[
    Money,
    BeforeValidator(_money),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": r"^-?\d+(\.\d+)? [A-Za-z]{3}$", "examples": ["10.00 USD"]}
    ),
]
# A calendar date, YYYY-MM-DD (a business date: read in the business time zone).
IsoDate = Annotated[
    date,
    BeforeValidator(_iso_date),
    PlainSerializer(date.isoformat, return_type=str),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-12-01"]}),
]
# A cost, a budget or an amount given to a member: more than zero.
PositiveMoney = Annotated[
    MoneyField,
    AfterValidator(_positive),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\d+(\.\d+)? [A-Za-z]{3}$", "examples": ["10.00 USD"]}
    ),
]
# A threshold on what members spent: zero or more.
NonNegativeMoney = Annotated[
    MoneyField,
    AfterValidator(_not_negative),
    WithJsonSchema(
        {"type": "string", "pattern": r"^\d+(\.\d+)? [A-Za-z]{3}$", "examples": ["500.00 USD"]}
    ),
]
# An id: lower-case letters, digits, "-" and "_", starting with a letter.
Identifier = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*$", min_length=1, max_length=64)
]
# How many of something: a whole number from 0 to MAX_COUNT.
Count = Annotated[int, Field(ge=0, le=MAX_COUNT)]
OneOrMany = Annotated[
    list[str],
    BeforeValidator(_listify),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]
