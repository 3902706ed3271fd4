"""Hostile import files on SQLite and PostgreSQL, on every path an events file can take (the
general path, SQLite's fused path, the reader process): each bad row is rejected with its
line and reason, and every other row is imported. Nothing crashes, nothing is swallowed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from store.importer import ImportResult, import_file
from store.importer import reader_process as reader_module
from store.schema import events, members

EVENTS_HEADER = "event_id,member_id,type,occurred_at,amount,currency,properties\n"
MEMBERS = "member_id,email\nm1,ann@example.com\nm2,bob@example.com\n"


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


def quoted(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


@pytest.fixture
def with_members(engine: sa.Engine, tmp_path: Path) -> sa.Engine:
    path = tmp_path / "members.csv"
    path.write_text(MEMBERS)
    assert import_file(engine, "members", path).imported == 2
    return engine


@pytest.fixture(params=["in process", "reader process"])
def events_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """CSV events read where the importer is, or (SQLite) by the reader process."""
    if request.param == "reader process":
        monkeypatch.setattr(reader_module, "PARALLEL_FROM_BYTES", 0)
    return str(request.param)


def stored_events(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        query = sa.select(events.c.event_id).order_by(events.c.event_id)
        return list(connection.execute(query).scalars())


def problems(result: ImportResult) -> list[tuple[int, str]]:
    return [(p.line, p.field) for p in result.problems]


def rejects_lines(result: ImportResult) -> list[str]:
    assert result.rejects_path is not None
    with result.rejects_path.open(newline="", encoding="utf-8") as handle:
        return [row[0] for row in list(csv.reader(handle))[1:]]


# --- broken quotes ----------------------------------------------------------------------------


def test_a_quote_left_open_in_a_members_file_costs_its_row_only(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = tmp_path / "members.csv"
    path.write_text(
        "member_id,email,first_name,plan\n"
        "m1,ann@example.com,Ann,gold\n"
        'm2,bob@example.com,Bob,"silver\n'  # never closed: it used to take m3 and m4 along
        "m3,cat@example.com,Cat,gold\n"
        "m4,dan@example.com,Dan,bronze\n"
    )
    result = import_file(engine, "members", path)
    assert (result.imported, result.rejected) == (3, 1)
    assert problems(result) == [(3, "row")]
    assert "a quote opened on this line is never closed" in result.problems[0].message
    with engine.connect() as connection:
        query = sa.select(members.c.member_id, members.c.attributes)
        found = {member_id: attributes for member_id, attributes in connection.execute(query)}
    assert found == {"m1": {"plan": "gold"}, "m3": {"plan": "gold"}, "m4": {"plan": "bronze"}}


@pytest.mark.parametrize("chunk_size", [2, 5000])
def test_stray_quotes_in_an_events_file_cost_their_rows_only(
    with_members: sa.Engine, tmp_path: Path, events_path: str, chunk_size: int
) -> None:
    text = EVENTS_HEADER + (
        "e1,m1,login,2024-03-01,,,\n"
        'e2,m1,login,2024-03-01,,,"{\n'  # closed by the first quote of line 6: text follows
        "e3,m1,login,2024-03-01,,,\n"
        "e4,m2,login,2024-03-01,,,\n"
        'e5,m2,login,2024-03-01,,,"{""a"": 1}"\n'
        'e6,m2,"login,2024-03-01,,,\n'  # never closed
        "e7,m1,login,2024-03-01,,,\n"
        'e8,m1,login,2024-03-01,,,"{""note"":\n""two lines""}"\n'  # well-formed over two lines
        "e9,m1,login,2024-03-01,,,\n"
    )
    path = tmp_path / "events.csv"
    path.write_text(text)
    result = import_file(with_members, "events", path, chunk_size=chunk_size)
    assert (result.imported, result.rejected) == (7, 2)
    assert problems(result) == [(3, "row"), (7, "row")]
    assert stored_events(with_members) == ["e1", "e3", "e4", "e5", "e7", "e8", "e9"]
    assert rejects_lines(result) == ["3", "7"]


# --- values out of bounds ----------------------------------------------------------------------

BAD_EVENTS = [
    # line, field, the row after its event id
    (3, "amount", "m1,purchase,2024-03-01,99999999999999999999999,USD,"),
    (4, "amount", "m1,purchase,2024-03-01,1e999999999,USD,"),
    (5, "occurred_at", "m1,login,0001-01-01,,,"),
    (6, "occurred_at", "m1,login,9999-12-31,,,"),
    (7, "currency", "m1,purchase,2024-03-01,10.00,XYZ,"),
    (8, "amount", "m1,purchase,2024-03-01,-5.00,USD,"),
    (9, "properties", "m1,login,2024-03-01,,," + quoted('{"a": NaN}')),
    (10, "properties", "m1,login,2024-03-01,,," + quoted('{"a": -Infinity}')),
    (11, "properties", "m1,login,2024-03-01,,," + quoted('{"a": ' + nested(20_000) + "}")),
    (12, "properties", "m1,login,2024-03-01,,," + quoted('{"a": ' + nested(33) + "}")),
    (13, "properties", "m1,login,2024-03-01,,," + quoted(json.dumps({"a": "x" * 70_000}))),
    (14, "type", "m1,consent_restored,2024-03-01,,,"),
    (15, "properties", "m1,login,2024-03-01,,," + quoted('{"a": "\\ud800"}')),
]
GOOD_EVENTS = [
    "m1,refund,2024-03-02,-5.00,USD,",  # a refund may be negative; nothing adds it up
    "m1,purchase,1900-01-01,9999999999999.99,usd,",
    "m2,purchase,2199-12-31T23:59:59Z,0,JPY," + quoted('{"a": ' + nested(31) + "}"),
]


def test_values_out_of_bounds_are_rejected_per_row_in_csv(
    with_members: sa.Engine, tmp_path: Path, events_path: str
) -> None:
    lines = ["g0,m2,login,2024-03-01,,,"]
    lines += [f"b{n},{row}" for n, (_line, _field, row) in enumerate(BAD_EVENTS)]
    lines += [f"g{n + 1},{row}" for n, row in enumerate(GOOD_EVENTS)]
    path = tmp_path / "events.csv"
    path.write_text(EVENTS_HEADER + "\n".join(lines) + "\n")
    result = import_file(with_members, "events", path, chunk_size=4)
    assert problems(result) == [(line, field) for line, field, _row in BAD_EVENTS]
    assert (result.imported, result.rejected) == (4, len(BAD_EVENTS))
    assert stored_events(with_members) == ["g0", "g1", "g2", "g3"]
    with with_members.connect() as connection:
        amounts = connection.execute(
            sa.select(events.c.amount_minor, events.c.currency).order_by(events.c.event_id)
        ).all()
    assert [tuple(row) for row in amounts] == [
        (None, None),
        (-500, "USD"),
        (999_999_999_999_999, "USD"),
        (0, "JPY"),
    ]
    again = import_file(with_members, "events", path)  # and again: the same answer
    assert (again.imported, again.unchanged, again.rejected) == (0, 4, len(BAD_EVENTS))


def test_values_out_of_bounds_are_rejected_per_row_in_json_lines(
    with_members: sa.Engine, tmp_path: Path
) -> None:
    def record(event_id: str, **values: object) -> str:
        base = {"event_id": event_id, "member_id": "m1", "type": "login"}
        return json.dumps(base | {"occurred_at": "2024-03-01"} | values)

    lines = [
        record("g1"),
        record("b1", type="purchase", amount=1e20, currency="USD"),
        record("b2")[:-1] + ', "properties": {"a": NaN}}',
        record("b3")[:-1] + ', "properties": {"a": Infinity}}',
        record("b4")[:-1] + ', "amount": 1e400, "currency": "USD"}',
        record("b5")[:-1] + ', "properties": {"a": ' + nested(20_000) + "}}",
        record("b6")[:-1] + ', "properties": {"a": ' + nested(32) + "}}",
        record("b7", properties={"a": "x" * 70_000}),
        record("b8")[:-1] + ', "properties": {"a": "\\ud800"}}',
        record("b9", note="x" * (1 << 20)),
        record("b10", occurred_at="9999-01-01"),
        record("b11", type="purchase", amount="-1", currency="EUR"),
        record("b12", type="purchase", amount="1", currency="EURO"),
        record("g2", properties={"a": json.loads(nested(31))}),
        record("g3", type="purchase", amount=12.5, currency="EUR"),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = import_file(with_members, "events", path, chunk_size=3)
    assert problems(result) == [
        (2, "amount"),
        (3, "record"),
        (4, "record"),
        (5, "record"),
        (6, "record"),
        (7, "record"),
        (8, "properties"),
        (9, "record"),
        (10, "record"),
        (11, "occurred_at"),
        (12, "amount"),
        (13, "currency"),
    ]
    assert stored_events(with_members) == ["g1", "g2", "g3"]


def test_members_out_of_bounds_are_rejected_per_row(engine: sa.Engine, tmp_path: Path) -> None:
    csv_path = tmp_path / "members.csv"
    csv_path.write_text(
        "member_id,email,joined_at,birthday,plan\n"
        "m1,ann@example.com,0001-01-01,,\n"
        "m2,bob@example.com,,9999-01-01,\n"
        f"m3,cat@example.com,,,{'x' * 70_000}\n"
        "m4,dan@example.com,1900-01-01,1900-01-01,gold\n"
    )
    result = import_file(engine, "members", csv_path)
    assert problems(result) == [(2, "joined_at"), (3, "birthday"), (4, "plan")]
    assert result.imported == 1

    jsonl_path = tmp_path / "members.jsonl"
    jsonl_path.write_text(
        '{"member_id": "m5", "email": "eve@example.com", "score": NaN}\n'
        '{"member_id": "m6", "email": "fay@example.com", "extra": ' + nested(40) + "}\n"
        '{"member_id": "m7", "email": "gil@example.com", "tags": ["t"]}\n'
    )
    result = import_file(engine, "members", jsonl_path)
    assert problems(result) == [(1, "record"), (2, "record")]
    with engine.connect() as connection:
        found = set(connection.execute(sa.select(members.c.member_id)).scalars())
    assert found == {"m4", "m7"}
