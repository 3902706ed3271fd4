"""Imports into PostgreSQL go by COPY (a staging table, then one set-based statement): the
values that COPY's text format escapes survive exactly, a re-import adds nothing, and the
rejects and counts are byte for byte those of the same file imported into SQLite."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from store.engine import create_store_engine
from store.importer import ImportResult, import_file
from store.importer import postgres_stage as stage_module
from store.importer import reader_process as reader_module
from store.migrate import upgrade
from store.schema import events, members

# Everything COPY's text format has to escape (tab, newline, carriage return, backslash, the
# \N that means NULL), and text outside ASCII.
HOSTILE = "tab\there, line\nbreak, cr\r, back\\slash, \\N, \\t, naïve ☃ 𝄞, \"quoted\" 'single'"
EVENTS_HEADER = ["event_id", "member_id", "type", "occurred_at", "amount", "currency", "properties"]


def csv_line(cells: list[str]) -> str:
    return ",".join('"' + cell.replace('"', '""') + '"' for cell in cells) + "\n"


def members_file(path: Path) -> Path:
    lines = [csv_line(["member_id", "email", "first_name", "last_name", "plan"])]
    lines.append(csv_line(["m1", "ann@example.com", HOSTILE, "O'Brien\\", "gold\tplus"]))
    lines.append(csv_line(["m\\2", "bob@example.com", "Bob", "\\N", "☃"]))
    path.write_text("".join(lines), encoding="utf-8")
    return path


def events_file(path: Path) -> Path:
    properties = json.dumps({"note": HOSTILE, "nested": {"k\\ey": ["\t", "\n", "\\N"]}})
    lines = [csv_line(EVENTS_HEADER)]
    lines.append(csv_line(["e\t1", "m1", "login", "2024-03-01", "", "", properties]))
    lines.append(csv_line(["e\\2", "m\\2", "purchase", "2024-03-02", "1.50", "usd", ""]))
    lines.append(csv_line(["e3", "nobody", "login", "2024-03-03", "", "", ""]))
    lines.append(csv_line(["e4", "m1", "login", "2024-03-04", "", "", '{"a": "\\u0000"}']))
    lines.append(csv_line(["e5", "m1", "purchase", "2024-03-05", "-1", "USD", ""]))
    lines.append(csv_line(["e\t1", "m\\2", "login", "2024-03-06", "", "", ""]))
    lines.append(csv_line(["e6", "m\\2", "☃", "2024-03-07", "", "", json.dumps({"\\N": "\\N"})]))
    path.write_text("".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def copies(engine: sa.Engine, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The COPY statements the importer runs (each chunk's), recorded."""
    seen: list[str] = []
    original = stage_module.EventStage.insert, stage_module.MemberStage.write

    def insert(self: Any, params: list[Any]) -> int:
        seen.append("events")
        return original[0](self, params)

    def write(self: Any, *args: Any) -> None:
        seen.append("members")
        original[1](self, *args)

    monkeypatch.setattr(stage_module.EventStage, "insert", insert)
    monkeypatch.setattr(stage_module.MemberStage, "write", write)
    return seen


def counts(result: ImportResult) -> tuple[int, int, int, int]:
    return result.imported, result.updated, result.unchanged, result.rejected


def stored(engine: sa.Engine) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with engine.connect() as connection:
        member_rows = connection.execute(
            sa.select(
                members.c.member_id, members.c.first_name, members.c.last_name, members.c.attributes
            )
        )
        event_rows = connection.execute(
            sa.select(
                events.c.event_id,
                members.c.member_id,
                events.c.type,
                events.c.amount_minor,
                events.c.currency,
                events.c.properties,
            ).join(members)
        )
        # Sorted here: the databases' collations order "\t" and "\\" differently.
        people = sorted((dict(r) for r in member_rows.mappings()), key=lambda r: r["member_id"])
        found = sorted((dict(r) for r in event_rows.mappings()), key=lambda r: r["event_id"])
        return people, found


@pytest.mark.parametrize("reader", ["in process", "reader process"])
def test_hostile_values_survive_the_import_exactly(
    engine: sa.Engine,
    tmp_path: Path,
    copies: list[str],
    reader: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if reader == "reader process":
        monkeypatch.setattr(reader_module, "PARALLEL_FROM_BYTES", 0)
    assert counts(import_file(engine, "members", members_file(tmp_path / "m.csv"))) == (
        2,
        0,
        0,
        0,
    )
    path = events_file(tmp_path / "e.csv")
    result = import_file(engine, "events", path, chunk_size=2)
    assert counts(result) == (3, 0, 1, 3)
    assert [(p.line, p.field) for p in result.problems] == [
        (4, "member_id"),
        (5, "properties"),
        (6, "amount"),
    ]
    people, stored_events = stored(engine)
    assert people == [
        {
            "member_id": "m1",
            "first_name": HOSTILE,
            "last_name": "O'Brien\\",
            "attributes": {"plan": "gold\tplus"},
        },
        {"member_id": "m\\2", "first_name": "Bob", "last_name": "\\N", "attributes": {"plan": "☃"}},
    ]
    assert stored_events == [
        {
            "event_id": "e\t1",
            "member_id": "m1",
            "type": "login",
            "amount_minor": None,
            "currency": None,
            "properties": {"note": HOSTILE, "nested": {"k\\ey": ["\t", "\n", "\\N"]}},
        },
        {
            "event_id": "e6",
            "member_id": "m\\2",
            "type": "☃",
            "amount_minor": None,
            "currency": None,
            "properties": {"\\N": "\\N"},
        },
        {
            "event_id": "e\\2",
            "member_id": "m\\2",
            "type": "purchase",
            "amount_minor": 150,
            "currency": "USD",
            "properties": None,
        },
    ]
    # Idempotent: the same files again add and change nothing.
    assert counts(import_file(engine, "members", tmp_path / "m.csv")) == (0, 0, 2, 0)
    assert counts(import_file(engine, "events", path, chunk_size=2)) == (0, 0, 4, 3)
    assert stored(engine) == (people, stored_events)
    if engine.dialect.name == "postgresql":
        assert "events" in copies and "members" in copies  # written by COPY
    else:
        assert copies == []  # SQLite keeps its own path


def test_json_lines_events_go_by_copy_too(
    engine: sa.Engine, tmp_path: Path, copies: list[str]
) -> None:
    import_file(engine, "members", members_file(tmp_path / "m.csv"))
    records = [
        {
            "event_id": "j\t1",
            "member_id": "m1",
            "type": "login",
            "occurred_at": "2024-03-01",
            "properties": {"note": HOSTILE},
        },
        {"event_id": "j2", "member_id": "ghost", "type": "login", "occurred_at": "2024-03-01"},
    ]
    path = tmp_path / "e.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert counts(import_file(engine, "events", path)) == (1, 0, 0, 1)
    assert stored(engine)[1][0]["properties"] == {"note": HOSTILE}
    assert counts(import_file(engine, "events", path)) == (0, 0, 1, 1)
    assert ("events" in copies) == (engine.dialect.name == "postgresql")


def test_members_updated_and_seen_again_by_copy(
    engine: sa.Engine, tmp_path: Path, copies: list[str]
) -> None:
    path = members_file(tmp_path / "m.csv")
    import_file(engine, "members", path)
    path.write_bytes(path.read_bytes().replace(b"Bob", b"Bob\\\tJr"))
    result = import_file(engine, "members", path)
    assert counts(result) == (0, 1, 1, 0)
    people = {p["member_id"]: p for p in stored(engine)[0]}
    assert people["m\\2"]["first_name"] == "Bob\\\tJr"
    assert people["m1"]["first_name"] == HOSTILE
    with engine.connect() as connection:
        query = sa.select(members.c.member_id, members.c.source_line)
        lines = {member_id: line for member_id, line in connection.execute(query)}
        import_ids = set(connection.execute(sa.select(members.c.import_id)).scalars())
    assert lines == {"m1": 2, "m\\2": 5}  # m1's record spans lines 2 to 4
    assert len(import_ids) == 1  # both rows carry the latest import, changed or not
    assert ("members" in copies) == (engine.dialect.name == "postgresql")


def test_rejects_and_counts_are_those_of_sqlite(engine: sa.Engine, tmp_path: Path) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("compares PostgreSQL with SQLite")
    sqlite = create_store_engine(f"sqlite:///{tmp_path / 'twin.db'}")
    upgrade(sqlite)
    try:
        outcomes = []
        for database in (sqlite, engine):
            folder = tmp_path / database.dialect.name
            folder.mkdir()
            member_result = import_file(database, "members", members_file(folder / "m.csv"))
            path = events_file(folder / "e.csv")
            first = import_file(database, "events", path, chunk_size=3)
            again = import_file(database, "events", path, chunk_size=3)
            assert first.rejects_path is not None
            outcomes.append(
                (
                    counts(member_result),
                    counts(first),
                    counts(again),
                    [(p.line, p.field, p.message, p.warning) for p in first.problems],
                    first.rejects_path.read_bytes(),
                    stored(database),
                )
            )
        assert outcomes[0] == outcomes[1]
    finally:
        sqlite.dispose()
