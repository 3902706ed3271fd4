"""The base of every user-file spec: rules across keys that are checked even when some keys
are wrong, so that one ``validate`` run reports every problem of a file.

A pydantic ``model_validator(mode="after")`` runs only once every field is valid: a bad
amount hid "item does not apply to a discount", and any bad key of a campaign hid its
cross-key rules, so files needed several validate-fix rounds. A ``FileSpec`` states its
rules in ``check(valid, given)`` instead. ``valid`` holds the fields whose values are valid
(absent optional fields with their defaults); ``given`` names the keys the user wrote, valid
or not. A rule looks only at what it needs, and skips itself when that is not valid, so it
reports alongside the field errors and never because of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from contextlib import suppress
from functools import cache
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from audience.fields import STRICT

# A broken rule: the key it is about (as the user writes it; ``None`` for the mapping
# itself) and what is wrong, in plain words.
Broken = tuple[str | None, str]


@cache
def _adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    annotation: Any = info.annotation
    if info.metadata:  # constraints pydantic moved off the annotation (Days, Field(ge=…))
        annotation = Annotated[(annotation, *info.metadata)]
    return TypeAdapter(annotation)


def _error(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    kind = PydanticCustomError("value_error", "{message}", {"message": message})
    return InitErrorDetails(type=kind, loc=loc, input=value)


def _again(error: Any) -> InitErrorDetails:
    """An error pydantic reported, to raise again together with the broken rules."""
    ctx = {k: v for k, v in (error.get("ctx") or {}).items() if k != "error"}
    kind = PydanticCustomError(error["type"], "{message}", {**ctx, "message": error["msg"]})
    return InitErrorDetails(type=kind, loc=tuple(error["loc"]), input=error.get("input"))


class FileSpec(BaseModel):
    """A mapping in a user file. Subclasses state their cross-key rules in ``check``."""

    model_config = STRICT

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        """The rules across keys that are broken (none by default)."""
        return iter(())

    @classmethod
    def _names(cls, data: Mapping[str, Any]) -> dict[str, str]:
        """Field name → the key the user wrote for it."""
        found = {}
        for name, info in cls.model_fields.items():
            for key in (info.alias, name):
                if key is not None and key in data:
                    found[name] = key
                    break
        return found

    @classmethod
    def _given(cls, data: Mapping[str, Any]) -> frozenset[str]:
        """The fields the user gave, counting a misspelt key as the field it resembles
        (``mn: 3`` gives ``min``: "give at least one of min or max" would only repeat
        "unknown key 'mn' (did you mean 'min'?)")."""
        names = cls._names(data)
        keys = {info.alias or name: name for name, info in cls.model_fields.items()}
        unknown = [k for k in data if isinstance(k, str) and k not in keys and k not in names]
        meant = {keys[c[0]] for k in unknown if (c := difflib.get_close_matches(k, keys, n=1))}
        return frozenset(names) | meant

    @classmethod
    def _valid_fields(cls, data: Mapping[str, Any], failed: set[str]) -> dict[str, Any]:
        written = cls._names(data)
        valid: dict[str, Any] = {}
        for name, info in cls.model_fields.items():
            key = written.get(name)
            if key is None:
                if not info.is_required():
                    valid[name] = info.get_default(call_default_factory=True)
            elif key not in failed:
                with suppress(ValidationError):
                    valid[name] = _adapter(cls, name).validate_python(data[key])
        return valid

    @model_validator(mode="wrap")
    @classmethod
    def _every_problem(cls, data: Any, handler: Any) -> Any:
        if not isinstance(data, Mapping):
            return handler(data)
        given = cls._given(data)
        try:
            spec = handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            failed = {str(e["loc"][0]) for e in errors if e["loc"]}
            valid = cls._valid_fields(data, failed)
            broken = list(cls.check(valid, given))
            if not broken:
                raise
            title, found = exc.title, [_again(e) for e in errors]
        else:
            broken = list(cls.check({n: getattr(spec, n) for n in cls.model_fields}, given))
            if not broken:
                return spec
            title, found = cls.__name__, []
        for key, message in broken:
            loc: tuple[str | int, ...] = (key,) if key is not None else ()
            found.append(_error(loc, message, data.get(key) if key is not None else data))
        raise ValidationError.from_exception_data(title, found) from None
