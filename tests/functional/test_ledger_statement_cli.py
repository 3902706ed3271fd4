"""``nudgeflow ledger statement`` and ``ledger balances --as-of`` as finance runs them: the
month as a table, CSV and JSON, the tie-out said in a line, a mismatch with its figures and
exit 1, a bad month in one line; balances at a past date."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.postings import Entry, campaign_account
from store.engine import create_store_engine
from store.ledger import journal, ledger_transaction
from store.migrate import upgrade
from tests.functional.runner import Nudgeflow
from tests.integration.store.test_ledger_statement import two_months


@pytest.fixture
def books(nudgeflow: Nudgeflow) -> sa.Engine:
    """The functional database with the November and December of the integration tests."""
    made = create_store_engine(nudgeflow.env["NUDGEFLOW_DATABASE_URL"])
    upgrade(made)
    two_months(made)
    return made


def test_the_statement_as_a_table_says_it_ties_out(nudgeflow: Nudgeflow, books: sa.Engine) -> None:
    books.dispose()
    result = nudgeflow("ledger", "statement", "--month", "2026-11")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "c (USD), 2026-11" in text
    for label, amount in [
        ("budget remaining, opening 01 Nov", "0.00"),
        ("+ funded", "100.00"),
        ("budget remaining, closing 30 Nov 2026", "70.50"),
        ("outstanding, closing", "10.00"),
        ("spent in month: discount", "7.50"),
        ("spent in month: gift", "12.00"),
    ]:
        (row,) = [
            x for x in text.splitlines() if label in x and x.split("│")[1].strip() == label.strip()
        ]
        assert row.split("│")[2].strip() == amount, row
    assert (
        "ties out: 11 transactions and 24 entries dated 2026-11-01 to 2026-11-30; for each of 1 "
        "campaigns, the opening balances plus the month's movements are the closing balances"
    ) in " ".join(text.split())


def test_csv_and_json_carry_the_same_figures(
    nudgeflow: Nudgeflow, books: sa.Engine, tmp_path: Path
) -> None:
    books.dispose()
    as_csv = nudgeflow("ledger", "statement", "--month", "2026-12", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["campaign_id"], r["currency"]) for r in rows] == [("c", "USD"), ("d", "EUR")]
    c = rows[0]
    assert (c["budget_remaining_opening"], c["budget_remaining_closing"]) == ("70.50", "115.50")
    assert (c["released_outstanding"], c["expired"], c["redemption_differences"]) == (
        "10.00",
        "10.00",
        "-5.00",
    )
    assert (c["spent_credit"], c["spent_in_month"], c["spent_to_date"]) == ("5.00", "5.00", "24.50")
    assert "budget" not in c  # every amount says what it is
    # The tie-out line goes to stderr, so stdout stays a clean CSV.
    assert as_csv.stderr.startswith("ties out: ")

    out = tmp_path / "december.json"
    as_json = nudgeflow(
        "ledger", "statement", "--month", "2026-12", "--format", "json", "--out", str(out)
    )
    assert as_json.returncode == 0, as_json.stderr
    assert as_json.stdout.startswith("ties out: ")
    document = json.loads(out.read_text())
    assert (document["month"], document["from"], document["to"]) == (
        "2026-12",
        "2026-12-01",
        "2026-12-31",
    )
    assert document["ties_out"] is True and document["mismatches"] == []
    first = document["campaigns"][0]
    assert first["spent_by_reward_kind"] == {
        "discount": "0.00",
        "credit": "5.00",
        "gift": "0.00",
        "vip_invite": "0.00",
    }
    assert {k: v for k, v in first.items() if k != "spent_by_reward_kind"} == {
        k: v
        for k, v in c.items()
        if not k.startswith("spent_")
        or k in ("spent_in_month", "spent_to_date", "spent_before_month")
    }


def test_a_statement_that_does_not_tie_out_exits_1_with_the_figures(
    nudgeflow: Nudgeflow, books: sa.Engine
) -> None:
    with ledger_transaction(books) as connection:
        journal.lock(connection)
        journal.append(
            connection,
            "issue",
            "c",
            [
                Entry(campaign_account("c", "budget"), -300, "USD"),
                Entry(campaign_account("c", "spent"), 300, "USD"),
            ],
            business_date=date(2026, 12, 9),
            memo="an odd posting",
        )
    books.dispose()
    result = nudgeflow("ledger", "statement", "--month", "2026-12", "--format", "json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["ties_out"] is False
    assert result.stderr.splitlines() == [
        "statement does NOT tie out: campaign c (USD) budget_remaining: opening 70.50 + the "
        "month's movements 45.00 = 115.50, but its entries to the month's end sum to 112.50",
        "statement does NOT tie out: campaign c (USD) spent: opening 19.50 + the month's "
        "movements 5.00 = 24.50, but its entries to the month's end sum to 27.50",
    ]


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", "error: --month: expected a month as YYYY-MM, got '2026-13' (no such month)"),
        ("11/2026", "error: --month: expected a month as YYYY-MM, got '11/2026'"),
        ("1969-12", "error: --month: 1969-12-01 is out of range: use a date from 1970-01-01"),
    ],
)
def test_a_bad_month_is_one_line(nudgeflow: Nudgeflow, month: str, message: str) -> None:
    result = nudgeflow("ledger", "statement", "--month", month)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(message)
    assert "Traceback" not in result.stderr


def test_an_unknown_format_is_refused(nudgeflow: Nudgeflow) -> None:
    result = nudgeflow("ledger", "statement", "--month", "2026-11", "--format", "xlsx")
    assert result.returncode == 2 and "expected table, csv or json" in result.stderr


def test_balances_at_a_past_date(nudgeflow: Nudgeflow, books: sa.Engine) -> None:
    books.dispose()
    result = nudgeflow("ledger", "balances", "--as-of", "2026-11-30", "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["as_of"] == "2026-11-30"
    assert document["campaigns"] == [
        {
            "campaign_id": "c",
            "currency": "USD",
            "budget_remaining": "70.50",
            "reserved": "0.00",
            "outstanding": "10.00",
            "spent_to_date": "19.50",
            "funded_to_date": "100.00",
        }
    ]
    table = nudgeflow("ledger", "balances", "--as-of", "2026-11-30")
    assert "Ledger balances per campaign at the end of 2026-11-30" in table.stdout
    early = nudgeflow("ledger", "balances", "--as-of", "2026-10-31")
    assert early.stdout.strip() == "the ledger is empty at the end of 2026-10-31"
