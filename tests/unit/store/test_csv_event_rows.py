"""``rows.csv_event_parser`` agrees with ``rows.parse_event`` on every CSV row, good or bad."""

from __future__ import annotations

import pytest

from store import rows
from store.rows import RowError

COLUMNS = list(rows.EVENT_COLUMNS)
GOOD = "e1", "m1", "purchase", "2024-03-01T10:00:00Z", "12.50", "usd", '{"sku": "A-1"}'

CASES = [
    GOOD,
    ("e2", "m2", "login", "2024-03-01", "", "", ""),
    (" e3 ", " m3 ", " login ", " 2024-03-01T11:00:00+01:00 ", " ", " ", " "),
    ("e4", "m1", "purchase", "2024-03-01T10:00:00", "1500", "JPY", "{}"),
    ("e5", "m1", "purchase", "2024-03-01t10:00:00z", "0", "eur", ""),
    ("e6", "m1", "purchase", "2024-03-01T10:00:00.5Z", "0.00", " Usd ", ""),
    ("e7", "m1", "purchase", "1960-01-01T00:00:00Z", "-3", "usd", ""),
    ("", "m1", "login", "2024-03-01", "", "", ""),
    ("e8", " ", "login", "2024-03-01", "", "", ""),
    ("e9", "m1", "", "2024-03-01", "", "", ""),
    ("e10", "m1", "login", "", "", "", ""),
    ("e11", "m1", "login", "yesterday", "", "", ""),
    ("e12", "m1", "login", "2024-02-30", "", "", ""),
    ("e13", "m1", "purchase", "2024-03-01", "twelve", "USD", ""),
    ("e14", "m1", "purchase", "2024-03-01", "12", "", ""),
    ("e15", "m1", "purchase", "2024-03-01", "1.234", "USD", ""),
    ("e16", "m1", "purchase", "2024-03-01", "1", "dollars", ""),
    ("e17", "m1", "purchase", "2024-03-01", "nan", "USD", ""),
    ("e18", "m1", "login", "2024-03-01", "", "", "[1]"),
    ("e19", "m1", "login", "2024-03-01", "", "", "{not json"),
    ("e20", "m1", "login", "2024-03-01", "", "", '{"a": "\\u0000"}'),
    ("e" * 201, "m1", "login", "2024-03-01", "", "", ""),
    ("e21", "m1", "t" * 65, "2024-03-01", "", "", ""),
    ("e22", "m1", "login", "2024-03-01T25:00:00", "", "", ""),
    ("e23", "m1", "login", "9999-12-31T23:59:59-23:59", "", "", ""),
    ("e24", "m1", "login", "0001-01-01T00:00:00+01:00", "", "", ""),
]


def outcome(call: object, *args: object) -> object:
    try:
        return call(*args)  # type: ignore[operator]
    except RowError as exc:
        return ("error", exc.field, exc.reason)


@pytest.mark.parametrize("cells", CASES)
def test_the_csv_parser_agrees_with_parse_event(cells: tuple[str, ...]) -> None:
    parse = rows.csv_event_parser(COLUMNS)
    expected = outcome(rows.parse_event, dict(zip(COLUMNS, cells, strict=True)))
    assert outcome(parse, list(cells)) == expected


def test_columns_in_another_order_or_missing() -> None:
    columns = ["occurred_at", "type", "member_id", "event_id"]
    parse = rows.csv_event_parser(columns)
    assert parse(["2024-03-01", "login", "m1", "e1"]) == (
        "e1",
        "m1",
        "login",
        1709251200,
        None,
        None,
        None,
    )
    with pytest.raises(RowError, match="occurred_at: expected an ISO 8601"):
        parse(["soon", "login", "m1", "e1"])
    shuffled = ["currency", "amount", *columns]
    parse = rows.csv_event_parser(shuffled)
    assert parse(["usd", "2", "2024-03-01", "purchase", "m1", "e1"])[4:6] == (200, "USD")
    with pytest.raises(RowError, match="currency: required when an amount is given"):
        parse(["", "2", "2024-03-01", "purchase", "m1", "e1"])


def test_a_currency_spelling_is_remembered_only_when_valid() -> None:
    parse = rows.csv_event_parser(COLUMNS)
    for _ in range(2):
        assert parse(["e1", "m1", "purchase", "2024-03-01", "1", "gbp", ""])[5] == "GBP"
        with pytest.raises(RowError, match="currency: expected a three-letter"):
            parse(["e1", "m1", "purchase", "2024-03-01", "1", "pounds", ""])


def test_instants_read_by_python_and_by_parse_instant_agree() -> None:
    parse = rows.csv_event_parser(COLUMNS)
    for text, epoch in [
        ("2023-11-14T22:13:20Z", 1_700_000_000),
        ("2023-11-14T22:13:20z", 1_700_000_000),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000),
        ("2023-11-14T22:13:20", 1_700_000_000),
        ("2023-11-14T22:13:20.999Z", 1_700_000_000),
        ("1969-12-31T23:59:59.5Z", 0),  # int() truncates toward zero, as parse_instant does
    ]:
        assert parse(["e1", "m1", "login", text, "", "", ""])[3] == epoch, text
