"""Pydantic's errors in plain words for the people who write campaign files.

Pydantic says "Input should be less than or equal to 1000"; a marketer should read "must be
from 0 to 1000, got 5000". ``describe`` turns one pydantic error into such a sentence, with
"did you mean" for unknown keys and misspelt choices (the keys a model accepts are read from
the model itself, so the suggestions follow the specs).
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

IDENTIFIER_PATTERN = "^[a-z][a-z0-9_-]*$"
_QUOTED = re.compile(r"'([^']*)'")
_LIST_KEYS = 12  # an unknown key with no close match lists the keys when there are this few


def suggest(word: str, known: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or nothing."""
    close = difflib.get_close_matches(word, list(known), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def shown(value: Any) -> str:
    """A value as the user wrote it, for "got …"."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value)
    try:
        return str(value)
    except ValueError:  # Python will not print an integer of more than 4300 digits
        return "a number of thousands of digits"


# --- reading the models --------------------------------------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types behind ``Annotated``, ``Optional`` and unions."""
    if get_origin(annotation) is Annotated:
        return _unwrap(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _field(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info
    return None


def _step(annotation: Any, part: str | int) -> tuple[Any, FieldInfo | None] | None:
    """The type (and field) that ``part`` of a location leads to inside ``annotation``."""
    for candidate in _unwrap(annotation):
        origin = get_origin(candidate)
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            if isinstance(part, str):
                info = _field(candidate, part)
                if info is not None:
                    return info.annotation, info
        elif origin in (list, tuple) and isinstance(part, int):
            args = get_args(candidate)
            return (args[0] if args else Any), None
        elif origin is dict and isinstance(part, str):
            return get_args(candidate)[1], None
    return None


def _resolve(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[Any, FieldInfo | None]:
    """The type and field at ``loc``, skipping the parts pydantic adds (union tags)."""
    annotation: Any = model
    info: FieldInfo | None = None
    for part in loc:
        found = _step(annotation, part)
        if found is not None:
            annotation, info = found
    return annotation, info


def keys_of(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, ...]:
    """The keys the mapping at ``loc`` accepts, as users write them."""
    annotation, _ = _resolve(model, loc)
    for candidate in _unwrap(annotation):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return tuple(info.alias or name for name, info in candidate.model_fields.items())
    return ()


def _constraints(info: FieldInfo | None) -> list[Any]:
    """The field's constraints, including those inside ``Annotated[…] | None``."""
    if info is None:
        return []
    found = list(info.metadata)
    pending = [info.annotation]
    while pending:
        annotation = pending.pop()
        if get_origin(annotation) is Annotated:
            for item in get_args(annotation)[1:]:
                found += item.metadata if isinstance(item, FieldInfo) else [item]
            pending.append(get_args(annotation)[0])
        elif get_origin(annotation) in (Union, types.UnionType):
            pending += get_args(annotation)
    return found


def _bounds(info: FieldInfo | None) -> tuple[Any, Any]:
    """The field's lower and upper bound, when it has both kinds of constraint."""
    low = high = None
    for item in _constraints(info):
        # annotated_types.Ge, Gt, Le and Lt, read by their one attribute
        low = next((getattr(item, k) for k in ("ge", "gt") if hasattr(item, k)), low)
        high = next((getattr(item, k) for k in ("le", "lt") if hasattr(item, k)), high)
    return low, high


# --- the sentences -----------------------------------------------------------------------


def _unknown_key(model: type[BaseModel], loc: Sequence[str | int]) -> str:
    key = str(loc[-1])
    known = keys_of(model, loc[:-1])
    hint = suggest(key, known)
    if not hint and 0 < len(known) <= _LIST_KEYS:
        hint = f"; expected one of {', '.join(known)}"
    return f"unknown key '{key}'{hint}"


def _choice(error: Any) -> str:
    expected = str((error.get("ctx") or {}).get("expected", ""))
    choices = _QUOTED.findall(expected)
    value = error.get("input")
    hint = suggest(value, choices) if isinstance(value, str) else ""
    return f"expected {expected}, got {shown(value)}{hint}"


def _range(error: Any, info: FieldInfo | None) -> str:
    ctx = error.get("ctx") or {}
    got = shown(error.get("input"))
    low, high = _bounds(info)
    if low is not None and high is not None:
        return f"must be from {low} to {high}, got {got}"
    words = {"ge": "at least", "gt": "greater than", "le": "at most", "lt": "less than"}
    for key, word in words.items():
        if key in ctx:
            return f"must be {word} {ctx[key]}, got {got}"
    return f"is out of range, got {got}"


def _length(error: Any) -> str:
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "string_too_short":
        size = ctx.get("min_length", 1)
        return "must not be empty" if size == 1 else f"must be at least {size} characters long"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters long"
    if kind == "too_short":
        size = ctx.get("min_length", 1)
        return f"needs at least {size} {'entry' if size == 1 else 'entries'}"
    return f"may have at most {ctx.get('max_length')} entries, got {ctx.get('actual_length')}"


_TYPES = {
    "int_type": "expected a whole number",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected a mapping of keys to values",
    "model_type": "expected a mapping of keys to values",
    "model_attributes_type": "expected a mapping of keys to values",
}


def describe(error: Any, model: type[BaseModel]) -> str:
    """One pydantic error (from ``ValidationError.errors()``) as a plain sentence."""
    kind = error["type"]
    loc = tuple(error["loc"])
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(model, loc)
    if kind == "literal_error":
        return _choice(error)
    if kind in _TYPES:
        return f"{_TYPES[kind]}, got {shown(error.get('input'))}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return _range(error, _resolve(model, loc)[1])
    if kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
        return _length(error)
    if kind == "string_pattern_mismatch":
        if (error.get("ctx") or {}).get("pattern") == IDENTIFIER_PATTERN:
            return (
                "expected an id of lower-case letters, digits, '-' and '_', starting with a "
                f"letter, got {shown(error.get('input'))}"
            )
        return f"is not in the expected form, got {shown(error.get('input'))}"
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
