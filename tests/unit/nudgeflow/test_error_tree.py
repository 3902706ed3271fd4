"""The exception tree drawn in ``nudgeflow/errors.py`` names every ``NudgeflowError``."""

from __future__ import annotations

import importlib

import nudgeflow.errors as errors

# Modules that define subclasses next to the code that raises them.
MODULES = (
    "night.batch",
    "night.settle",
    "night.runs",
    "delivery.message",
    "delivery.sandbox",
    "providers.email",
    "delivery.tokens",
    "flows.schedule",
    "inbound.preferences",
    "providers.invites",
    "providers.rewards",
    "store.lease",
)


def _subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_error_class_is_in_the_drawn_tree() -> None:
    for module in MODULES:
        importlib.import_module(module)
    doc = errors.__doc__ or ""
    names = {cls.__name__ for cls in _subclasses(errors.NudgeflowError)}
    missing = sorted(name for name in names if f"── {name} " not in doc)
    assert missing == []
