"""JSON in import rows (a JSON Lines record, an event's ``properties``): read strictly, so that
what is stored is JSON that SQLite and PostgreSQL both accept and later steps can walk.

Python's ``json`` reads more than JSON: ``NaN`` and ``Infinity`` (PostgreSQL refuses the
whole chunk they are in; SQLite stores text its own JSON functions cannot read), numbers such
as ``1e400`` (they become infinity), escapes of half a UTF-16 pair such as ``"\\ud800"``
(neither database can store them), and nesting so deep that the parser itself gives up with a
``RecursionError``. Each of these is a ``RowError`` for that row here, and nesting is capped
at ``MAX_DEPTH`` levels.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from store.rows.values import RowError

MAX_DEPTH = 32  # levels of objects and arrays in one JSON value ({"a": {"b": 1}} has two)
_HALF_PAIR = re.compile(r"\\u[dD][89abcdefABCDEF]")  # a UTF-16 surrogate escape


def load_json(field: str, text: str, *, outer: int = 0) -> Any:
    """``text`` parsed as strict JSON, or ``RowError``: nested at most ``MAX_DEPTH`` levels
    below its ``outer`` levels (1 for a JSON Lines record, whose values may nest as deep)."""
    depth = MAX_DEPTH + outer
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise RowError(field, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise RowError(field, f"invalid JSON: {exc}") from None
    # Counting brackets is cheap and bounds the depth: only a value with more than ``depth``
    # of them needs walking.
    if text.count("{") + text.count("[") > depth and nesting(value) > depth:
        raise RowError(field, f"nested deeper than {MAX_DEPTH} levels")
    if _HALF_PAIR.search(text) is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise RowError(field, "contains half of a UTF-16 surrogate pair (\\ud800…)") from None
    return value


def nesting(value: Any) -> int:
    """How many levels of objects and arrays ``value`` has (a scalar has none)."""
    levels = 0
    current = [value]
    while True:
        containers = [item for item in current if isinstance(item, dict | list)]
        if not containers:
            return levels
        levels += 1
        current = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
        ]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number out of range: {text}")
    return number


# One decoder for every row: ``json.loads`` with options builds a new one each call.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
