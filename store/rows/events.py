"""Event rows: one event record, from JSON Lines or straight from a CSV row's cells, checked
into the tuple the importer inserts.

Beyond the shapes of its values, an event is held to what the later steps can use: a
``purchase`` is never negative (a refund is an event of its own type, which no spend
adds up), amounts and currencies are those of ``nudgeflow.money``, ``properties`` is strict
JSON of at most ``FIELD_LIMIT`` characters, and ``consent_restored``, which gives a member
back their consent, is never imported: only ``nudgeflow members consent --restore`` (or the
member's preference centre) records it. Nor are the preference centre's own events
(``PREFERENCE_EVENTS``: categories left and rejoined, pauses started and ended): only the
member sets their preferences (``store.preferences``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from audience.rules import PURCHASE
from nudgeflow.money import normalise_currency, to_minor_units
from store.rows.columns import EVENT_COLUMNS
from store.rows.json_values import load_json
from store.rows.values import (
    FIELD_LIMIT,
    RowError,
    instant_seconds,
    refuse_nul,
    required_value,
    text_value,
)

# The event that restores a member's withdrawn consent (``store.consent``): recorded by an
# operator's command (or, later, the member's preference centre), never by an import.
CONSENT_RESTORED = "consent_restored"

# The preference centre's events (``store.preferences``): never imported either.
CATEGORY_UNSUBSCRIBED = "category_unsubscribed"
CATEGORY_RESUBSCRIBED = "category_resubscribed"
NUDGES_PAUSED = "nudges_paused"
NUDGES_RESUMED = "nudges_resumed"
PREFERENCE_EVENTS = frozenset(
    (CATEGORY_UNSUBSCRIBED, CATEGORY_RESUBSCRIBED, NUDGES_PAUSED, NUDGES_RESUMED)
)

# event_id, member_id, type, occurred_at (epoch s), amount_minor, currency, properties
EventRow = tuple[str, str, str, int, int | None, str | None, dict[str, Any] | None]


def parse_event(record: Mapping[str, Any]) -> EventRow:
    """Validate and normalise one event record (unknown keys are an error)."""
    if not record.keys() <= _EVENT_KEYS:
        unknown = sorted(set(record) - _EVENT_KEYS)
        raise RowError(unknown[0], f"unknown field; events have: {', '.join(EVENT_COLUMNS)}")
    get = record.get
    return _event(*[get(name) for name in EVENT_COLUMNS])


def csv_event_parser(columns: Sequence[str]) -> Callable[[Sequence[str]], EventRow]:
    """``parse_event`` for the rows of a CSV file with these (checked) columns.

    The row is the list of its cells, in the header's order: no dict is built for it, which
    matters at ten million rows. The result and every ``RowError`` are ``parse_event``'s.
    """
    if set(EVENT_COLUMNS) <= set(columns):
        cells = itemgetter(*(columns.index(name) for name in EVENT_COLUMNS))
        return lambda values: _event(*cells(values))
    positions = [columns.index(name) if name in columns else -1 for name in EVENT_COLUMNS]
    return lambda values: _event(*[values[i] if i >= 0 else None for i in positions])


def _event(
    event_id: Any,
    member_id: Any,
    event_type: Any,
    occurred_at: Any,
    amount: Any,
    currency: Any,
    properties: Any,
) -> EventRow:
    """The checks of one event, its values given in ``EVENT_COLUMNS`` order (``None``: absent)."""
    event_id = required_value("event_id", event_id)
    member_id = required_value("member_id", member_id)
    event_type = required_value("type", event_type)
    if event_type == CONSENT_RESTORED:
        raise RowError(
            "type",
            f"{CONSENT_RESTORED} is recorded by `nudgeflow members consent --restore`, "
            "never imported",
        )
    if event_type in PREFERENCE_EVENTS:
        raise RowError(
            "type",
            f"{event_type} is recorded by the member's preference centre, never imported",
        )
    occurred = instant_seconds("occurred_at", required_value("occurred_at", occurred_at))
    amount_minor = None
    if currency:  # "" and None both mean no currency
        known = _CURRENCIES.get(currency) if currency.__class__ is str else None
        currency = known if known is not None else _currency(currency)
    else:
        currency = None
    if amount or amount == 0:  # a JSON 0 is an amount; "" is none
        amount = text_value("amount", amount)
        if amount is not None:
            if currency is None:
                raise RowError("currency", "required when an amount is given")
            try:
                amount_minor = to_minor_units(amount, currency)
            except ValueError as exc:
                raise RowError("amount", str(exc)) from None
            if amount_minor < 0 and event_type == PURCHASE:
                raise RowError(
                    "amount",
                    f"a purchase cannot be negative ({amount}); import a refund as an event of "
                    "its own type, such as refund",
                )
    if properties.__class__ is dict:
        # From JSON Lines, already parsed (and its nesting checked with the record).
        if len(json.dumps(properties, ensure_ascii=False)) > FIELD_LIMIT:
            raise RowError("properties", f"longer than {FIELD_LIMIT:,} characters")
    elif properties is not None and properties != "":
        properties = parse_properties(properties)
    return (
        event_id,
        member_id,
        event_type,
        occurred,
        amount_minor,
        currency,
        properties or None,
    )


def _currency(value: Any) -> str | None:
    text = text_value("currency", value)
    if text is None:
        return None
    try:
        code = normalise_currency(text)
    except ValueError as exc:
        raise RowError("currency", str(exc)) from None
    if value.__class__ is str and len(_CURRENCIES) < 1000:
        _CURRENCIES[value] = code  # a file spells its few currencies the same way each time
    return code


_CURRENCIES: dict[str, str] = {}  # cell as written → normalised code (valid ones only)


_EVENT_KEYS = frozenset(EVENT_COLUMNS)


def parse_properties(value: Any) -> dict[str, Any] | None:
    text = text_value("properties", value)
    if text is None:
        return None
    properties = load_json("properties", text)
    if not isinstance(properties, dict):
        raise RowError("properties", f"expected a JSON object, got {text!r}")
    refuse_nul("properties", text)
    return properties
