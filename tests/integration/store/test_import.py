"""Importing members and events into a real database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from nudgeflow.errors import ImportFileError
from store.importer import ImportResult, checking, import_file
from store.importer import reader_process as reader_module
from store.rows import Kind
from store.schema import events, imports, member_tags, members

MEMBERS = (
    "member_id,email,first_name,joined_at,birthday,country,timezone,tags,email_opt_in,plan\n"
    "m1,Ann@Example.com,Ann,2024-01-02,1990-05-06,fr,Europe/Paris,vip;early,yes,gold\n"
    "m2,bob@example.com,Bob,,02-29,,,,,\n"
    "m3,carol@example.com,Carol,2024-02-03T10:00:00+01:00,,us,,staff,0,silver\n"
)
EVENTS_HEADER = "event_id,member_id,type,occurred_at,amount,currency,properties\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def run(engine: sa.Engine, kind: Kind, path: Path, **kwargs: Any) -> ImportResult:
    return import_file(engine, kind, path, **kwargs)


def counts(result: ImportResult) -> tuple[int, int, int, int]:
    return result.imported, result.updated, result.unchanged, result.rejected


def member_rows(engine: sa.Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        found = connection.execute(sa.select(members).order_by(members.c.member_id)).mappings()
        return {row["member_id"]: dict(row) for row in found}


def tags_of(engine: sa.Engine) -> dict[str, set[tuple[str, str]]]:
    query = sa.select(members.c.member_id, member_tags.c.tag, member_tags.c.source).join(
        members, members.c.id == member_tags.c.member_pk
    )
    found: dict[str, set[tuple[str, str]]] = {}
    with engine.connect() as connection:
        for member_id, tag, source in connection.execute(query):
            found.setdefault(member_id, set()).add((tag, source))
    return found


def event_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    query = sa.select(events, members.c.member_id).join(members).order_by(events.c.event_id)
    with engine.connect() as connection:
        return [dict(row) for row in connection.execute(query).mappings()]


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


@pytest.fixture
def with_members(engine: sa.Engine, tmp_path: Path) -> sa.Engine:
    run(engine, "members", write(tmp_path / "members.csv", MEMBERS))
    return engine


# --- members -------------------------------------------------------------------------------


def test_members_are_stored_normalised(engine: sa.Engine, tmp_path: Path) -> None:
    result = run(engine, "members", write(tmp_path / "members.csv", MEMBERS))
    assert counts(result) == (3, 0, 0, 0)
    stored = member_rows(engine)
    ann = stored["m1"]
    assert ann["email"] == "Ann@example.com"
    assert ann["joined_at"] == 1704153600
    assert (ann["birth_year"], ann["birth_month"], ann["birth_day"]) == (1990, 5, 6)
    assert (ann["country"], ann["timezone"], ann["email_opt_in"]) == ("FR", "Europe/Paris", True)
    assert ann["attributes"] == {"plan": "gold"}
    assert ann["import_id"] == result.import_id
    assert ann["source_line"] == 2
    bob = stored["m2"]
    assert (bob["birth_year"], bob["birth_month"], bob["birth_day"]) == (None, 2, 29)
    assert bob["joined_at"] is None
    assert bob["country"] is None
    assert bob["attributes"] is None  # SQL NULL, not JSON null
    assert bob["email_opt_in"] is True
    assert stored["m3"]["email_opt_in"] is False
    assert stored["m3"]["joined_at"] == 1706950800
    assert tags_of(engine) == {
        "m1": {("vip", "import"), ("early", "import")},
        "m3": {("staff", "import")},
    }
    with engine.connect() as connection:
        null_attributes = connection.execute(
            sa.select(sa.func.count()).where(members.c.attributes.is_(None))
        ).scalar_one()
    assert null_attributes == 1


def test_importing_the_same_members_twice_changes_nothing(
    engine: sa.Engine, tmp_path: Path
) -> None:
    path = write(tmp_path / "members.csv", MEMBERS)
    run(engine, "members", path)
    before = member_rows(engine)
    again = run(engine, "members", path)
    assert counts(again) == (0, 0, 3, 0)
    after = member_rows(engine)
    for member_id, row in after.items():
        changed = {k for k in row if row[k] != before[member_id][k]}
        assert changed <= {"import_id"}, member_id  # provenance only: the same line, same data
        assert row["updated_at"] == before[member_id]["updated_at"]


def test_changed_rows_are_updated(engine: sa.Engine, tmp_path: Path) -> None:
    run(engine, "members", write(tmp_path / "members.csv", MEMBERS))
    changed = MEMBERS.replace("Bob,,02-29", "Robert,,02-29").replace("staff,0,silver", "staff,0,")
    result = run(engine, "members", write(tmp_path / "members2.csv", changed))
    assert counts(result) == (0, 2, 1, 0)
    stored = member_rows(engine)
    assert stored["m2"]["first_name"] == "Robert"
    assert stored["m3"]["attributes"] is None  # an emptied attribute is removed


def test_columns_missing_from_the_file_are_left_alone(engine: sa.Engine, tmp_path: Path) -> None:
    run(engine, "members", write(tmp_path / "members.csv", MEMBERS))
    result = run(
        engine,
        "members",
        write(
            tmp_path / "emails.csv", "member_id,email\nm1,ann@example.com\nm3,carol@example.com\n"
        ),
    )
    assert counts(result) == (0, 1, 1, 0)
    stored = member_rows(engine)
    assert stored["m1"]["email"] == "ann@example.com"
    assert stored["m1"]["first_name"] == "Ann"
    assert stored["m1"]["attributes"] == {"plan": "gold"}
    assert stored["m3"]["email_opt_in"] is False
    assert tags_of(engine)["m1"] == {("vip", "import"), ("early", "import")}


def test_a_tags_column_replaces_import_tags_only(engine: sa.Engine, tmp_path: Path) -> None:
    run(engine, "members", write(tmp_path / "members.csv", MEMBERS))
    with engine.begin() as connection:
        pk = connection.execute(sa.select(members.c.id).where(members.c.member_id == "m1"))
        connection.execute(
            member_tags.insert().values(member_pk=pk.scalar_one(), tag="fatigued", source="system")
        )
    text = (
        "member_id,email,tags\n"
        "m1,Ann@example.com,vip;loyal\nm2,bob@example.com,new\nm3,carol@example.com,\n"
    )
    result = run(engine, "members", write(tmp_path / "tags.csv", text))
    assert counts(result) == (0, 3, 0, 0)
    assert tags_of(engine) == {
        "m1": {("vip", "import"), ("loyal", "import"), ("fatigued", "system")},
        "m2": {("new", "import")},
    }
    assert counts(run(engine, "members", tmp_path / "tags.csv")) == (0, 0, 3, 0)


def test_same_member_twice_in_a_file_last_wins_with_a_warning(
    engine: sa.Engine, tmp_path: Path
) -> None:
    text = (
        "member_id,email,first_name\n"
        "m1,a@example.com,First\nm2,b@example.com,B\nm1,a@example.com,Last\n"
    )
    result = run(engine, "members", write(tmp_path / "dup.csv", text))
    assert counts(result) == (2, 0, 0, 0)
    assert member_rows(engine)["m1"]["first_name"] == "Last"
    assert [str(p) for p in result.problems] == [
        f"{tmp_path / 'dup.csv'}:4: member_id: warning: 'm1' is also on line 2; line 4 wins"
    ]
    assert result.warnings == 1
    assert result.rejected == 0


def test_same_member_in_different_chunks_is_found_through_import_id(
    engine: sa.Engine, tmp_path: Path
) -> None:
    text = (
        "member_id,email,first_name\n"
        "m1,a@example.com,First\nm2,b@example.com,B\nm3,c@example.com,C\nm1,a@example.com,Last\n"
    )
    path = write(tmp_path / "dup.csv", text)
    result = run(engine, "members", path, chunk_size=2)
    assert counts(result) == (3, 0, 0, 0)  # each member counted once
    assert member_rows(engine)["m1"]["first_name"] == "Last"
    assert [p.message for p in result.problems] == ["'m1' is also on line 2; line 5 wins"]


def test_bad_member_rows_are_rejected_and_good_ones_imported(
    engine: sa.Engine, tmp_path: Path
) -> None:
    text = (
        "member_id,email,joined_at,timezone,birthday\n"
        "m1,a@example.com,2024-01-01,UTC,\n"
        ",b@example.com,,,\n"
        "m3,not-an-email,,,\n"
        "m4,d@example.com,someday,,\n"
        "m5,e@example.com,,Mars/Base,\n"
        "m6,f@example.com,,,1990-02-30\n"
        "m7,g@example.com\n"
    )
    path = write(tmp_path / "bad.csv", text)
    result = run(engine, "members", path)
    assert counts(result) == (1, 0, 0, 6)
    assert [(p.line, p.field) for p in result.problems] == [
        (3, "member_id"),
        (4, "email"),
        (5, "joined_at"),
        (6, "timezone"),
        (7, "birthday"),
        (8, "row"),
    ]
    assert result.rejects_path == tmp_path / "bad.csv.rejects.csv"
    with result.rejects_path.open(newline="", encoding="utf-8") as file:
        rejects = list(csv.reader(file))
    assert rejects[0] == [
        "line",
        "reason",
        "member_id",
        "email",
        "joined_at",
        "timezone",
        "birthday",
    ]
    assert rejects[1] == ["3", "member_id: required", "", "b@example.com", "", "", ""]
    assert rejects[-1] == ["8", "row: expected 5 fields, got 2", "m7", "g@example.com"]
    assert len(rejects) == 7


def test_a_clean_import_removes_a_stale_rejects_file(engine: sa.Engine, tmp_path: Path) -> None:
    path = write(tmp_path / "members.csv", MEMBERS)
    stale = tmp_path / "members.csv.rejects.csv"
    stale.write_text("line,reason\n", encoding="utf-8")
    result = run(engine, "members", path)
    assert result.rejects_path is None
    assert not stale.exists()


def test_the_imports_row_records_the_counts(engine: sa.Engine, tmp_path: Path) -> None:
    text = MEMBERS + "m4,broken\n"
    result = run(engine, "members", write(tmp_path / "members.csv", text))
    with engine.connect() as connection:
        row = connection.execute(sa.select(imports)).mappings().one()
    assert row["id"] == result.import_id
    assert (row["kind"], row["source"]) == ("members", str(tmp_path / "members.csv"))
    assert (row["imported"], row["updated"], row["unchanged"], row["rejected"]) == (3, 0, 0, 1)
    assert row["finished_at"] is not None
    assert row["finished_at"] >= row["started_at"]


def test_members_from_json_lines(engine: sa.Engine, tmp_path: Path) -> None:
    lines = [
        json.dumps({"member_id": 7, "email": "a@example.com", "tags": ["vip"], "score": 9.5}),
        "",
        json.dumps({"member_id": "m8", "email": "b@example.com", "email_opt_in": False}),
        "not json",
        json.dumps(["a", "list"]),
        json.dumps({"member_id": "m9"}),
    ]
    result = run(engine, "members", write(tmp_path / "members.jsonl", "\n".join(lines) + "\n"))
    assert counts(result) == (2, 0, 0, 3)
    stored = member_rows(engine)
    assert stored["7"]["attributes"] == {"score": "9.5"}
    assert stored["m8"]["email_opt_in"] is False
    assert tags_of(engine) == {"7": {("vip", "import")}}
    assert [(p.line, p.field) for p in result.problems] == [
        (4, "record"),
        (5, "record"),
        (6, "email"),
    ]
    assert result.rejects_path is not None
    with result.rejects_path.open(newline="", encoding="utf-8") as file:
        rejects = list(csv.reader(file))
    assert rejects[0] == ["line", "reason", "record"]
    assert rejects[1][0] == "4"
    assert rejects[1][2] == "not json"


# --- events --------------------------------------------------------------------------------


def test_events_are_stored(with_members: sa.Engine, tmp_path: Path) -> None:
    text = EVENTS_HEADER + (
        'e1,m1,purchase,2024-03-01T10:00:00Z,12.50,usd,"{""sku"": ""A-1""}"\n'
        "e2,m2,login,2024-03-01,,,\n"
        "e3,m1,purchase,2024-03-01T11:00:00+01:00,1500,jpy,\n"
    )
    result = run(with_members, "events", write(tmp_path / "events.csv", text))
    assert counts(result) == (3, 0, 0, 0)
    stored = event_rows(with_members)
    assert [(e["event_id"], e["member_id"], e["type"]) for e in stored] == [
        ("e1", "m1", "purchase"),
        ("e2", "m2", "login"),
        ("e3", "m1", "purchase"),
    ]
    assert (stored[0]["occurred_at"], stored[0]["amount_minor"], stored[0]["currency"]) == (
        1709287200,
        1250,
        "USD",
    )
    assert stored[0]["properties"] == {"sku": "A-1"}
    assert stored[0]["import_id"] == result.import_id
    assert (stored[1]["amount_minor"], stored[1]["currency"], stored[1]["properties"]) == (
        None,
        None,
        None,
    )
    assert stored[2]["occurred_at"] == 1709287200
    assert stored[2]["amount_minor"] == 1500
    with with_members.connect() as connection:
        sql_nulls = connection.execute(
            sa.select(sa.func.count()).where(events.c.properties.is_(None))
        ).scalar_one()
    assert sql_nulls == 2


def test_importing_the_same_events_twice_changes_nothing(
    with_members: sa.Engine, tmp_path: Path
) -> None:
    text = EVENTS_HEADER + "e1,m1,purchase,2024-03-01,1,USD,\ne2,m2,login,2024-03-02,,,\n"
    path = write(tmp_path / "events.csv", text)
    assert counts(run(with_members, "events", path)) == (2, 0, 0, 0)
    before = event_rows(with_members)
    assert counts(run(with_members, "events", path)) == (0, 0, 2, 0)
    assert event_rows(with_members) == before


@pytest.mark.parametrize("chunk_size", [2, 5000])
def test_the_same_event_id_twice_keeps_the_first(
    with_members: sa.Engine, tmp_path: Path, chunk_size: int
) -> None:
    text = EVENTS_HEADER + (
        "e1,m1,purchase,2024-03-01,1,USD,\n"
        "e2,m2,login,2024-03-02,,,\n"
        "e3,m2,login,2024-03-03,,,\n"
        "e1,m1,purchase,2024-03-09,9,USD,\n"
    )
    path = write(tmp_path / "events.csv", text)
    result = run(with_members, "events", path, chunk_size=chunk_size)
    assert counts(result) == (3, 0, 1, 0)
    stored = event_rows(with_members)
    assert [e["event_id"] for e in stored] == ["e1", "e2", "e3"]
    assert stored[0]["amount_minor"] == 100


def test_events_for_unknown_members_are_rejected(with_members: sa.Engine, tmp_path: Path) -> None:
    text = EVENTS_HEADER + (
        "e1,m1,purchase,2024-03-01,1,USD,\n"
        "e2,nobody,login,2024-03-02,,,\n"
        "e3,m2,purchase,2024-03-03,twelve,USD,\n"
        "e4,m2,purchase,2024-03-03,12,,\n"
        "e5,m2,purchase,2024-03-03,1.234,USD,\n"
        "e6,m2,login,2024-03-03,,,[1]\n"
        "e7,m2,login,yesterday,,,\n"
    )
    path = write(tmp_path / "events.csv", text)
    result = run(with_members, "events", path)
    assert counts(result) == (1, 0, 0, 6)
    assert [str(p).split(": ", 1)[1] for p in result.problems][:2] == [
        "member_id: unknown member 'nobody'",
        "amount: expected a decimal number such as 12.50, got 'twelve'",
    ]
    assert [(p.line, p.field) for p in result.problems] == [
        (3, "member_id"),
        (4, "amount"),
        (5, "currency"),
        (6, "amount"),
        (7, "properties"),
        (8, "occurred_at"),
    ]
    assert result.rejects_path is not None
    with result.rejects_path.open(newline="", encoding="utf-8") as file:
        rejects = list(csv.DictReader(file))
    assert rejects[0] == {
        "line": "3",
        "reason": "member_id: unknown member 'nobody'",
        "event_id": "e2",
        "member_id": "nobody",
        "type": "login",
        "occurred_at": "2024-03-02",
        "amount": "",
        "currency": "",
        "properties": "",
    }
    assert [e["event_id"] for e in event_rows(with_members)] == ["e1"]


def test_events_from_json_lines(with_members: sa.Engine, tmp_path: Path) -> None:
    lines = [
        {
            "event_id": 1,
            "member_id": "m1",
            "type": "purchase",
            "occurred_at": "2024-03-01",
            "amount": 12.5,
            "currency": "eur",
            "properties": {"sku": "A", "qty": 2},
        },
        {"event_id": "e2", "member_id": "m1", "type": "login", "occurred_at": "2024-03-01"},
        {"event_id": "e3", "member_id": "m1", "type": "x", "occurred_at": "2024-03-01", "o": 1},
    ]
    text = "\r\n".join(json.dumps(line) for line in lines) + "\r\n"
    result = run(with_members, "events", write(tmp_path / "events.ndjson", text))
    assert counts(result) == (2, 0, 0, 1)
    assert [(p.line, p.field) for p in result.problems] == [(3, "o")]
    stored = event_rows(with_members)
    assert stored[0]["event_id"] == "1"
    assert (stored[0]["amount_minor"], stored[0]["currency"]) == (1250, "EUR")
    assert stored[0]["properties"] == {"sku": "A", "qty": 2}


# --- files that cannot be imported -----------------------------------------------------------


def nothing_imported(engine: sa.Engine) -> bool:
    return count(engine, members) == count(engine, events) == count(engine, imports) == 0


def test_a_file_that_is_not_utf8_imports_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "members.csv"
    path.write_bytes(MEMBERS.encode() + "m4,d@example.com,Zoë,,,,,,,\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match=r"members\.csv:5: not UTF-8 text"):
        run(engine, "members", path)
    assert nothing_imported(engine)


def test_utf16_imports_nothing(engine: sa.Engine, tmp_path: Path) -> None:
    path = tmp_path / "members.csv"
    path.write_bytes(MEMBERS.encode("utf-16-le"))
    with pytest.raises(ImportFileError, match="NUL byte"):
        run(engine, "members", path)
    assert nothing_imported(engine)


@pytest.mark.parametrize(
    ("kind", "header", "message"),
    [
        ("members", "member_id,first_name", "missing required column 'email'"),
        ("members", "member_id,email,Email", "duplicate column 'email'"),
        ("events", EVENTS_HEADER.strip() + ",colour", "unknown column 'colour'"),
    ],
)
def test_wrong_columns_import_nothing(
    engine: sa.Engine, tmp_path: Path, kind: Kind, header: str, message: str
) -> None:
    path = write(tmp_path / "file.csv", header + "\n" + "a,b,c\n")
    with pytest.raises(ImportFileError, match=message) as caught:
        run(engine, kind, path)
    assert str(caught.value).startswith(f"{path}:1: ")
    assert caught.value.exit_code == 2
    assert nothing_imported(engine)


def test_missing_empty_and_unknown_files(engine: sa.Engine, tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="no such file"):
        run(engine, "members", tmp_path / "absent.csv")
    with pytest.raises(ImportFileError, match="empty file"):
        run(engine, "members", write(tmp_path / "empty.csv", ""))
    with pytest.raises(ImportFileError, match="unknown format"):
        run(engine, "members", write(tmp_path / "members.xlsx", MEMBERS))
    with pytest.raises(ImportFileError, match="unknown format 'xml'"):
        run(engine, "members", tmp_path / "members.xlsx", file_format="xml")
    assert nothing_imported(engine)


def test_format_option_overrides_the_extension(engine: sa.Engine, tmp_path: Path) -> None:
    result = run(engine, "members", write(tmp_path / "members.txt", MEMBERS), file_format="csv")
    assert result.imported == 3


# --- events: the CSV fast path and the general path agree -----------------------------------


@pytest.fixture(params=["preloaded", "per chunk"])
def member_keys(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Member keys loaded once up front, or looked up chunk by chunk (a huge members table)."""
    if request.param == "per chunk":
        monkeypatch.setattr(checking, "PRELOAD_MEMBERS", 0)
    return str(request.param)


@pytest.mark.parametrize("chunk_size", [1, 3, 5000])
def test_event_rejects_keep_their_lines_and_order(
    with_members: sa.Engine, tmp_path: Path, member_keys: str, chunk_size: int
) -> None:
    text = EVENTS_HEADER + (
        "e1,m1,purchase,2024-03-01,1,USD,\n"
        "\n"
        'e2,m2,login,2024-03-02,,,"{""note"":\n'
        '""two lines""}"\n'
        "e3,nobody,login,2024-03-03,,,\n"
        "e4,m2,login\n"
        "e1,m3,login,2024-03-04,,,\n"
        ",m3,login,2024-03-04,,,\n"
        "e5,m3,login,2024-03-05,,,\n"
        "e6,ghost,login,2024-03-05,,,\n"
    )
    path = write(tmp_path / "events.csv", text)
    result = run(with_members, "events", path, chunk_size=chunk_size)
    assert counts(result) == (3, 0, 1, 4)  # e1 again: unchanged, the first one kept
    assert [(p.line, p.field) for p in result.problems] == [
        (6, "member_id"),
        (7, "row"),
        (9, "event_id"),
        (11, "member_id"),
    ]
    stored = event_rows(with_members)
    assert [(e["event_id"], e["member_id"]) for e in stored] == [
        ("e1", "m1"),
        ("e2", "m2"),
        ("e5", "m3"),
    ]
    assert stored[1]["properties"] == {"note": "two lines"}
    assert result.rejects_path is not None
    with result.rejects_path.open(newline="", encoding="utf-8") as file:
        rejects = list(csv.reader(file))
    assert [row[:2] for row in rejects[1:]] == [
        ["6", "member_id: unknown member 'nobody'"],
        ["7", "row: expected 7 fields, got 3"],
        ["9", "event_id: required"],
        ["11", "member_id: unknown member 'ghost'"],
    ]
    assert rejects[2][2:] == ["e4", "m2", "login"]
    again = run(with_members, "events", path, chunk_size=chunk_size)
    assert counts(again) == (0, 0, 4, 4)


def test_events_with_columns_in_any_order_case_and_optional_ones_left_out(
    with_members: sa.Engine, tmp_path: Path, member_keys: str
) -> None:
    text = (
        "Type,OCCURRED_AT,member_id,event_id,Currency,amount\n"
        "purchase,2024-03-01T10:00:00Z,m1,e1,eur,2.5\n"
        "login,2024-03-01,m2,e2,,\n"
    )
    result = run(with_members, "events", write(tmp_path / "events.csv", text))
    assert counts(result) == (2, 0, 0, 0)
    stored = event_rows(with_members)
    assert [(e["event_id"], e["amount_minor"], e["currency"], e["properties"]) for e in stored] == [
        ("e1", 250, "EUR", None),
        ("e2", None, None, None),
    ]
    assert stored[0]["occurred_at"] == 1709287200


def test_a_broken_quote_costs_its_row_and_the_rest_of_the_file_is_imported(
    with_members: sa.Engine, tmp_path: Path, member_keys: str
) -> None:
    text = EVENTS_HEADER + (
        "e1,m1,login,2024-03-01,,,\n"
        "e2,m1,login,2024-03-01,,,\n"
        "e3,m1,login,2024-03-01,,,\n"
        'e4,m1,login,2024-03-01,,,"{\n'
    )
    # The stray quote swallows the lines after it until the cell passes the csv field limit;
    # they are read again as rows once its line is rejected.
    text += "".join(f"e{i},m1,login,2024-03-01,,,\n" for i in range(5, 10_000))
    path = write(tmp_path / "events.csv", text)
    result = run(with_members, "events", path, chunk_size=1000)
    assert counts(result) == (9_998, 0, 0, 1)
    assert [(p.line, p.field) for p in result.problems] == [(5, "row")]
    assert "a field longer than 65,536 characters" in result.problems[0].message
    assert len(event_rows(with_members)) == 9_998
    with with_members.connect() as connection:
        row = connection.execute(sa.select(imports).where(imports.c.kind == "events")).mappings()
        recorded = row.one()
    assert (recorded["imported"], recorded["rejected"]) == (9_998, 1)
    assert recorded["finished_at"] is not None


def test_events_import_reports_progress_by_bytes(
    with_members: sa.Engine, tmp_path: Path, member_keys: str
) -> None:
    lines = [f"e{i},m{i % 3 + 1},login,2024-03-01,,," for i in range(10)]
    path = write(tmp_path / "events.csv", EVENTS_HEADER + "\n".join(lines) + "\n")
    seen: list[int] = []
    result = run(with_members, "events", path, chunk_size=4, progress=seen.append)
    assert result.imported == 10
    assert len(seen) == 3
    assert seen == sorted(seen)
    assert seen[-1] == path.stat().st_size


@pytest.fixture
def reader_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """CSV events read and checked in a second process, as for a large file."""
    monkeypatch.setattr(reader_module, "PARALLEL_FROM_BYTES", 0)


def test_events_read_in_a_second_process(
    with_members: sa.Engine, tmp_path: Path, reader_process: None
) -> None:
    text = EVENTS_HEADER + (
        "e1,m1,purchase,2024-03-01,1,USD,\n"
        '\ne2,m2,login,2024-03-02,,,"{""a"":\n1}"\n'
        "e3,nobody,login,2024-03-03,,,\n"
        "e4,m2,login\n"
        "e1,m3,login,2024-03-04,,,\n"
        "e5,m3,purchase,2024-03-05,1.234,USD,\n"
    )
    path = write(tmp_path / "events.csv", text)
    seen: list[int] = []
    result = run(with_members, "events", path, chunk_size=2, progress=seen.append)
    assert counts(result) == (2, 0, 1, 3)
    assert [(p.line, p.field) for p in result.problems] == [
        (6, "member_id"),
        (7, "row"),
        (9, "amount"),
    ]
    stored = event_rows(with_members)
    assert [(e["event_id"], e["member_id"], e["properties"]) for e in stored] == [
        ("e1", "m1", None),
        ("e2", "m2", {"a": 1}),
    ]
    assert seen[-1] == path.stat().st_size
    assert result.rejects_path is not None
    assert len(result.rejects_path.read_text().splitlines()) == 4
    assert counts(run(with_members, "events", path)) == (0, 0, 3, 3)


def test_a_broken_quote_found_by_the_second_process(
    with_members: sa.Engine, tmp_path: Path, reader_process: None
) -> None:
    text = EVENTS_HEADER + "e1,m1,login,2024-03-01,,,\ne2,m1,login,2024-03-01,,,\n"
    text += 'e3,m1,login,2024-03-01,,,"{\n'
    text += "".join(f"e{i},m1,login,2024-03-01,,,\n" for i in range(4, 10_000))
    path = write(tmp_path / "events.csv", text)
    result = run(with_members, "events", path, chunk_size=1000)
    assert counts(result) == (9_998, 0, 0, 1)
    assert [(p.line, p.field) for p in result.problems] == [(4, "row")]
    assert len(event_rows(with_members)) == 9_998
