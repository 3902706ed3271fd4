"""Row rules for imports: every check in ``store.rows``, no database."""

from __future__ import annotations

import re
from typing import Any

import pytest

from store import rows
from store.rows import MemberRow, RowError, RowProblem


def member(**values: Any) -> MemberRow:
    record: dict[str, Any] = {"member_id": "m1", "email": "a@example.com"}
    record.update(values)
    return rows.parse_member(record)


def event(**values: Any) -> rows.EventRow:
    record: dict[str, Any] = {
        "event_id": "e1",
        "member_id": "m1",
        "type": "purchase",
        "occurred_at": "2024-03-01T10:00:00Z",
    }
    record.update(values)
    return rows.parse_event({k: v for k, v in record.items() if v is not ...})


def rejected(call: Any, **values: Any) -> RowError:
    with pytest.raises(RowError) as caught:
        call(**values)
    return caught.value


# --- columns -----------------------------------------------------------------------------


def test_columns_keep_order_and_lower_case_builtins() -> None:
    columns = rows.check_columns([" Member_ID", "EMAIL", "Plan"], "members")
    assert columns == ["member_id", "email", "Plan"]


@pytest.mark.parametrize(
    ("header", "kind", "message"),
    [
        (["member_id"], "members", "missing required column 'email'"),
        (["member_id", "email", "email"], "members", "duplicate column 'email' (columns 2 and 3)"),
        (["member_id", "email", ""], "members", "column 3 has no name"),
        (["event_id", "member_id", "type"], "events", "missing required column 'occurred_at'"),
        (
            ["event_id", "member_id", "type", "occurred_at", "colour"],
            "events",
            "unknown column 'colour'",
        ),
    ],
)
def test_bad_column_sets(header: list[str], kind: rows.Kind, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        rows.check_columns(header, kind)


def test_member_files_may_have_any_other_column() -> None:
    assert rows.check_columns(["member_id", "email", "plan", "city"], "members")[2:] == [
        "plan",
        "city",
    ]


# --- members -----------------------------------------------------------------------------


def test_minimal_member_carries_only_its_columns() -> None:
    row = member()
    assert row == MemberRow("m1", {"email": "a@example.com"}, {}, None)


@pytest.mark.parametrize("field", ["member_id", "email"])
@pytest.mark.parametrize("value", ["", "   ", None])
def test_member_required_fields(field: str, value: str | None) -> None:
    error = rejected(member, **{field: value})
    assert (error.field, error.reason) == (field, "required")


def test_member_without_email_key_is_rejected() -> None:
    with pytest.raises(RowError, match="email: required"):
        rows.parse_member({"member_id": "m1"})


def test_email_is_normalised() -> None:
    assert member(email=" Alice@Example.COM ").fields["email"] == "Alice@example.com"


@pytest.mark.parametrize("email", ["alice", "alice@", "a b@example.com", "alice@@example.com"])
def test_malformed_email(email: str) -> None:
    error = rejected(member, email=email)
    assert error.field == "email"
    assert repr(email) in error.reason


def test_empty_builtin_columns_are_null() -> None:
    row = member(first_name="", last_name=" ", country="", timezone="", stripe_customer_id="")
    assert row.fields == {
        "email": "a@example.com",
        "first_name": None,
        "last_name": None,
        "country": None,
        "timezone": None,
        "stripe_customer_id": None,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02", 1704153600),
        ("2024-01-02T03:04:05", 1704164645),
        ("2024-01-02T03:04:05Z", 1704164645),
        ("2024-01-02T04:04:05+01:00", 1704164645),
        ("", None),
    ],
)
def test_joined_at(text: str, expected: int | None) -> None:
    assert member(joined_at=text).fields["joined_at"] == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-13-01", "01/02/2024", "2024-02-30"])
def test_unparseable_joined_at(text: str) -> None:
    error = rejected(member, joined_at=text)
    assert error.field == "joined_at"
    assert "ISO 8601" in error.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1990-05-06", (1990, 5, 6)),
        ("05-06", (None, 5, 6)),
        ("02-29", (None, 2, 29)),
        ("2000-02-29", (2000, 2, 29)),
        ("", (None, None, None)),
    ],
)
def test_birthday(text: str, expected: tuple[int | None, ...]) -> None:
    fields = member(birthday=text).fields
    assert (fields["birth_year"], fields["birth_month"], fields["birth_day"]) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1990-02-29", "no such date"),
        ("13-01", "no such date"),
        ("1990/05/06", "expected YYYY-MM-DD or MM-DD"),
        ("5-6", "expected YYYY-MM-DD or MM-DD"),
    ],
)
def test_bad_birthday(text: str, reason: str) -> None:
    error = rejected(member, birthday=text)
    assert error.field == "birthday"
    assert reason in error.reason


def test_country_is_upper_cased() -> None:
    assert member(country=" fr ").fields["country"] == "FR"


def test_known_timezone() -> None:
    assert member(timezone="Europe/Paris").fields["timezone"] == "Europe/Paris"


@pytest.mark.parametrize("zone", ["Mars/Base", "europe/paris", "../etc/passwd"])
def test_unknown_timezone(zone: str) -> None:
    error = rejected(member, timezone=zone)
    assert error.field == "timezone"
    assert "unknown IANA time zone" in error.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("YES", True), ("1", True), ("False", False), ("no", False), ("0", False)],
)
def test_email_opt_in(text: str, expected: bool) -> None:
    assert member(email_opt_in=text).fields["email_opt_in"] is expected


def test_empty_email_opt_in_changes_nothing() -> None:
    assert "email_opt_in" not in member(email_opt_in="").fields


def test_bad_email_opt_in() -> None:
    assert rejected(member, email_opt_in="maybe").field == "email_opt_in"


def test_tags_are_split_trimmed_and_distinct() -> None:
    assert member(tags=" vip; early;;vip ").tags == ("vip", "early")


def test_empty_tags_column_means_no_tags() -> None:
    assert member(tags="").tags == ()


def test_tags_may_be_a_json_list() -> None:
    assert member(tags=["vip", " early ", ""]).tags == ("vip", "early")


def test_overlong_tag() -> None:
    assert rejected(member, tags="x" * 101).field == "tags"


def test_other_columns_are_attributes_with_empties_marked_for_removal() -> None:
    row = member(plan=" gold ", city="")
    assert row.attributes == {"plan": "gold", "city": None}


def test_json_scalars_become_text() -> None:
    row = member(member_id=42, email_opt_in=False, score=9.5, vip=True)
    assert row.member_id == "42"
    assert row.fields["email_opt_in"] is False
    assert row.attributes == {"score": "9.5", "vip": "true"}


def test_overlong_member_id() -> None:
    assert "longer than 200" in rejected(member, member_id="m" * 201).reason


# --- merging and hashing -------------------------------------------------------------------


def test_new_member_defaults() -> None:
    content = rows.merge_member(None, member())
    assert content["email_opt_in"] is True
    assert content["attributes"] is None
    assert content["first_name"] is None


def test_columns_the_row_lacks_keep_their_values() -> None:
    old = rows.merge_member(None, member(first_name="Ann", plan="gold", city="Paris"))
    old["email_opt_in"] = False
    merged = rows.merge_member(old, member(city="", country="fr"))
    assert merged["first_name"] == "Ann"
    assert merged["email_opt_in"] is False
    assert merged["country"] == "FR"
    assert merged["attributes"] == {"plan": "gold"}


def test_row_hash_ignores_attribute_order_and_sees_changes() -> None:
    first = rows.merge_member(None, member(a="1", b="2"))
    second = rows.merge_member(None, member(b="2", a="1"))
    assert rows.row_hash(first) == rows.row_hash(second)
    assert len(rows.row_hash(first)) == 32
    assert rows.row_hash(first) != rows.row_hash(rows.merge_member(None, member(a="1")))


# --- events ------------------------------------------------------------------------------


def test_minimal_event() -> None:
    assert event() == ("e1", "m1", "purchase", 1709287200, None, None, None)


@pytest.mark.parametrize("field", ["event_id", "member_id", "type", "occurred_at"])
def test_event_required_fields(field: str) -> None:
    assert str(rejected(event, **{field: ""})) == f"{field}: required"
    assert str(rejected(event, **{field: ...})) == f"{field}: required"


def test_naive_occurred_at_is_utc_and_a_date_is_midnight() -> None:
    assert event(occurred_at="2024-03-01T10:00:00")[3] == 1709287200
    assert event(occurred_at="2024-03-01")[3] == 1709251200


def test_unparseable_occurred_at() -> None:
    assert rejected(event, occurred_at="March 1st").field == "occurred_at"


def test_amount_in_minor_units_and_currency_upper_cased() -> None:
    assert event(amount="12.50", currency="usd")[4:6] == (1250, "USD")
    assert event(amount="1200", currency="JPY")[4:6] == (1200, "JPY")
    assert event(amount=12.5, currency="EUR")[4:6] == (1250, "EUR")


def test_no_amount() -> None:
    assert event(amount="", currency="")[4:6] == (None, None)


def test_non_numeric_amount() -> None:
    error = rejected(event, amount="twelve", currency="USD")
    assert error.field == "amount"
    assert "decimal number" in error.reason


def test_amount_without_currency() -> None:
    assert str(rejected(event, amount="12.50")) == "currency: required when an amount is given"


def test_too_many_decimals_for_the_currency() -> None:
    assert "more decimals than USD" in rejected(event, amount="1.234", currency="USD").reason
    assert "more decimals than JPY" in rejected(event, amount="1.5", currency="JPY").reason


def test_bad_currency() -> None:
    assert rejected(event, amount="1", currency="dollars").field == "currency"


def test_properties_json_object() -> None:
    assert event(properties='{"sku": "A-1", "qty": 2}')[6] == {"sku": "A-1", "qty": 2}
    assert event(properties={"sku": "A-1"})[6] == {"sku": "A-1"}
    assert event(properties="")[6] is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("{sku: 1}", "invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("12", "expected a JSON object"),
        ([1, 2], "expected a JSON object"),
        ('{"a": "\\u0000"}', "NUL"),
    ],
)
def test_bad_properties(value: Any, reason: str) -> None:
    error = rejected(event, properties=value)
    assert error.field == "properties"
    assert reason in error.reason


def test_unknown_event_key() -> None:
    error = rejected(event, colour="red")
    assert error.field == "colour"
    assert "unknown field" in error.reason


def test_overlong_type() -> None:
    assert "longer than 64" in rejected(event, type="t" * 65).reason


# --- reporting -----------------------------------------------------------------------------


def test_problem_lines() -> None:
    assert str(RowProblem("m.csv", 7, "email", "bad")) == "m.csv:7: email: bad"
    warning = RowProblem("m.csv", 9, "member_id", "dup", warning=True)
    assert str(warning) == "m.csv:9: member_id: warning: dup"


def test_json_scalar() -> None:
    assert [rows.json_scalar(v) for v in (None, "a", True, 3, 2.5, [1])] == [
        None,
        "a",
        "true",
        "3",
        "2.5",
        "[1]",
    ]
