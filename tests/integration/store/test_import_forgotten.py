"""An import refuses the rows of forgotten members (by member_id or by email, whatever its
case), with the line and the day they were forgotten, unless it allows them back; a member
taken back is then imported as any other. On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from night.erasure import forget_member
from store.importer import ImportResult, Returning, import_file
from store.schema import forgotten_refs, members

KEY = "import-forgotten-test-key"
MEMBERS = (
    "member_id,email,first_name\n"
    "m1,ann@example.com,Ann\n"
    "m2,bob@example.com,Bob\n"
    "m3,carol@example.com,Carol\n"
)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _import(engine: sa.Engine, path: Path, text: str, *, allow: bool = False) -> ImportResult:
    path.write_text(text, encoding="utf-8")
    return import_file(engine, "members", path, returning=Returning(KEY, allow=allow))


def _forget(engine: sa.Engine, member_id: str, outbox: Path) -> None:
    forget_member(
        engine,
        member_id,
        signing_key=KEY,
        outbox_dir=outbox,
        erased_by="test",
        reason=None,
        clock=lambda: NOW,
    )


def _member_ids(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return sorted(connection.execute(sa.select(members.c.member_id)).scalars())


def test_forgotten_members_are_refused_by_id_or_email(engine: sa.Engine, tmp_path: Path) -> None:
    assert _import(engine, tmp_path / "first.csv", MEMBERS).imported == 3
    _forget(engine, "m1", tmp_path / "outbox")
    _forget(engine, "m2", tmp_path / "outbox")

    again = (
        "member_id,email,first_name\n"
        "m1,someone-new@example.com,Ann\n"  # the same member_id
        "m9,  BOB@Example.COM ,Bob\n"  # the same email, another case and spaces
        "m3,carol@example.com,Caroline\n"  # not forgotten: updated
    )
    result = _import(engine, tmp_path / "again.csv", again)

    assert (result.imported, result.updated, result.rejected) == (0, 1, 2)
    problems = [(p.line, p.field, p.message) for p in result.problems]
    assert problems == [
        (
            2,
            "member_id",
            "this member_id belongs to a member forgotten on 2026-06-01 (nudgeflow members "
            "forget); import with --allow-returning to take them back",
        ),
        (
            3,
            "email",
            "this email address belongs to a member forgotten on 2026-06-01 (nudgeflow "
            "members forget); import with --allow-returning to take them back",
        ),
    ]
    assert result.rejects_path is not None
    with result.rejects_path.open(encoding="utf-8") as handle:
        lines = [row[0] for row in csv.reader(handle)][1:]
    assert lines == ["2", "3"]
    assert [m for m in _member_ids(engine) if not m.startswith("forgotten-")] == ["m3"]


def test_allow_returning_takes_them_back_once(engine: sa.Engine, tmp_path: Path) -> None:
    _import(engine, tmp_path / "first.csv", MEMBERS)
    _forget(engine, "m1", tmp_path / "outbox")

    back = _import(
        engine, tmp_path / "back.csv", "member_id,email\nm1,ann@example.com\n", allow=True
    )

    assert (back.imported, back.rejected, back.returned) == (1, 0, 1)
    assert "1 forgotten members taken back (--allow-returning)" in back.summary()
    with engine.connect() as connection:
        assert (
            connection.execute(sa.select(sa.func.count()).select_from(forgotten_refs)).scalar() == 0
        )
    # Back among the members: a later import without the flag updates them as usual.
    later = _import(
        engine, tmp_path / "later.csv", "member_id,email,first_name\nm1,ann@example.com,A\n"
    )
    assert (later.updated, later.rejected) == (1, 0)
    assert "m1" in _member_ids(engine)


def test_an_import_without_forgotten_members_checks_nothing(
    engine: sa.Engine, tmp_path: Path
) -> None:
    result = _import(engine, tmp_path / "first.csv", MEMBERS)
    assert (result.imported, result.rejected, result.returned) == (3, 0, 0)


def test_references_of_another_signing_key_are_reported(engine: sa.Engine, tmp_path: Path) -> None:
    _import(engine, tmp_path / "first.csv", MEMBERS)
    _forget(engine, "m1", tmp_path / "outbox")
    path = tmp_path / "rotated.csv"
    path.write_text("member_id,email\nm1,ann@example.com\n", encoding="utf-8")
    result = import_file(engine, "members", path, returning=Returning("a rotated key"))
    assert (result.imported, result.rejected) == (1, 0)  # cannot be recognised any more
    assert "2 references of forgotten members were made with another signing key" in (
        result.summary()
    )
