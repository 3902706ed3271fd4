"""Pydantic field types shared by every user-file spec: durations, money, one-or-many lists."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema

from nudgeflow.durations import format_days, parse_days
from nudgeflow.money import Money

STRICT = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _days(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"expected a duration such as '14d' or '2w', got {value!r}")
    return parse_days(value)


def _money(value: Any) -> Money:
    if isinstance(value, Money):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an amount and a currency such as '10.00 USD', got {value!r}")
    return Money.parse(value)


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
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)? [A-Za-z]{3}$"}),
]
OneOrMany = Annotated[
    list[str],
    BeforeValidator(_listify),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


def at_key(key: str, message: str) -> str:
    """A validator message that ``planning.sourcefile`` locates at ``key`` inside the model
    being validated, instead of at the model itself."""
    return f"@{key} {message}"
