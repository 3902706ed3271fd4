"""The bounds of import rows (``store.rows``), no database: field sizes, the years an instant
may have, strict and shallow JSON, negative purchases, currencies, amounts, and the event an
import may never carry."""

from __future__ import annotations

import json
from typing import Any

import pytest

from store import rows
from store.rows import FIELD_LIMIT, MAX_DEPTH, RowError


def member(**values: Any) -> rows.MemberRow:
    return rows.parse_member({"member_id": "m1", "email": "a@example.com", **values})


def event(**values: Any) -> rows.EventRow:
    record = {
        "event_id": "e1",
        "member_id": "m1",
        "type": "purchase",
        "occurred_at": "2024-03-01T10:00:00Z",
        **values,
    }
    return rows.parse_event(record)


def refused(call: Any, **values: Any) -> RowError:
    with pytest.raises(RowError) as caught:
        call(**values)
    return caught.value


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


# --- instants and years ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["0001-01-01", "9999-12-31", "1899-12-31T23:59:59Z", "2200-01-01", "2199-12-31T23:30-01:00"],
)
def test_instants_outside_1900_to_2199_are_refused(text: str) -> None:
    error = refused(event, occurred_at=text)
    assert (error.field, error.reason) == (
        "occurred_at",
        f"outside the years 1900 to 2199: {text!r}",
    )
    assert refused(member, joined_at=text).field == "joined_at"


@pytest.mark.parametrize("text", ["1900-01-01", "2199-12-31T23:59:59Z", "1969-12-31T23:59:59"])
def test_instants_inside_the_range_are_kept(text: str) -> None:
    assert isinstance(event(occurred_at=text)[3], int)
    assert member(joined_at=text).fields["joined_at"] == event(occurred_at=text)[3]


def test_birthday_years_outside_1900_to_2199_are_refused() -> None:
    for text in ("9999-01-01", "0001-01-01", "1899-12-31"):
        assert refused(member, birthday=text).field == "birthday"
    assert member(birthday="1900-02-28").fields["birth_year"] == 1900
    assert member(birthday="02-29").fields["birth_year"] is None


# --- field sizes ----------------------------------------------------------------------------


def test_a_field_is_at_most_field_limit_characters() -> None:
    assert member(plan="x" * FIELD_LIMIT).attributes["plan"] == "x" * FIELD_LIMIT
    error = refused(member, plan="x" * (FIELD_LIMIT + 1))
    assert (error.field, error.reason) == ("plan", "longer than 65,536 characters")
    big = json.dumps({"note": "x" * FIELD_LIMIT})
    assert refused(event, type="login", properties=big).field == "properties"
    as_json = {"note": "x" * FIELD_LIMIT}  # from JSON Lines: measured as JSON
    assert refused(event, type="login", properties=as_json).field == "properties"
    assert refused(member, tags=["t"] * FIELD_LIMIT).field == "tags"


# --- JSON -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": NaN}', "invalid JSON: NaN is not a JSON number"),
        ('{"a": Infinity}', "invalid JSON: Infinity is not a JSON number"),
        ('{"a": -Infinity}', "invalid JSON: -Infinity is not a JSON number"),
        ('{"a": 1e400}', "invalid JSON: number out of range: 1e400"),
        ('{"a": ' + nested(MAX_DEPTH) + "}", "nested deeper than 32 levels"),
        ('{"a": ' + nested(20_000) + "}", "nested deeper than 32 levels"),
        ('{"a": "\\ud800"}', "contains half of a UTF-16 surrogate pair (\\ud800…)"),
    ],
)
def test_properties_are_strict_shallow_json(text: str, reason: str) -> None:
    error = refused(event, type="login", properties=text)
    assert (error.field, error.reason) == ("properties", reason)


def test_properties_at_the_depth_limit_and_real_surrogate_pairs_are_kept() -> None:
    deep = '{"a": ' + nested(MAX_DEPTH - 1) + "}"
    assert event(type="login", properties=deep)[6] is not None
    assert event(type="login", properties='{"a": "\\ud83d\\ude00"}')[6] == {"a": "😀"}


def test_a_json_lines_record_may_nest_its_values_as_deep_as_properties() -> None:
    inner = '{"a": ' + nested(MAX_DEPTH - 1) + "}"
    record = rows.load_json("record", '{"properties": ' + inner + "}", outer=1)
    assert (
        rows.parse_event(
            {
                **record,
                "event_id": "e1",
                "member_id": "m1",
                "type": "login",
                "occurred_at": "2024-03-01",
            }
        )[6]
        is not None
    )
    too_deep = '{"properties": {"a": ' + nested(MAX_DEPTH) + "}}"
    assert refused(rows.load_json, field="record", text=too_deep, outer=1).field == "record"


# --- amounts, currencies, event types ---------------------------------------------------------


def test_negative_purchases_are_refused_and_refunds_kept() -> None:
    error = refused(event, amount="-5.00", currency="USD")
    assert error.field == "amount"
    assert "a purchase cannot be negative (-5.00)" in error.reason
    assert event(type="refund", amount="-5.00", currency="USD")[4] == -500
    assert event(type="refund", amount="5.00", currency="USD")[4] == 500
    assert event(amount="0", currency="USD")[4] == 0
    assert event(amount=-0.0, currency="USD")[4] == 0  # a JSON number


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [
        ("99999999999999999999999", "USD", "amount"),
        ("1e999999999", "USD", "amount"),
        (1e20, "USD", "amount"),
        (float("nan"), "USD", "amount"),
        ("10.00", "XYZ", "currency"),
        ("10.00", "usdollar", "currency"),
    ],
)
def test_amounts_out_of_range_and_unknown_currencies_are_refused(
    amount: object, currency: str, field: str
) -> None:
    assert refused(event, amount=amount, currency=currency).field == field


def test_an_import_never_carries_consent_restored() -> None:
    error = refused(event, type="consent_restored", amount=None)
    assert error.field == "type"
    assert "nudgeflow members consent --restore" in error.reason


@pytest.mark.parametrize(
    "kind",
    ["category_unsubscribed", "category_resubscribed", "nudges_paused", "nudges_resumed"],
)
def test_an_import_never_carries_a_preference(kind: str) -> None:
    error = refused(event, type=kind, amount=None)
    assert error.field == "type"
    assert "preference centre" in error.reason


# --- consent ----------------------------------------------------------------------------------


def test_a_row_never_restores_withdrawn_consent() -> None:
    stored = {name: None for name in rows.CONTENT_COLUMNS} | {"email_opt_in": False}
    opt_in = member(email_opt_in="true")
    assert rows.asks_to_restore_consent(stored, opt_in)
    assert rows.merge_member(stored, opt_in)["email_opt_in"] is False
    # Withdrawing is allowed, and a new member or a consenting one is taken as written.
    given = stored | {"email_opt_in": True}
    assert rows.merge_member(given, member(email_opt_in="no"))["email_opt_in"] is False
    assert not rows.asks_to_restore_consent(given, opt_in)
    assert not rows.asks_to_restore_consent(None, opt_in)
    assert rows.merge_member(None, opt_in)["email_opt_in"] is True
    assert not rows.asks_to_restore_consent(stored, member(plan="gold"))
