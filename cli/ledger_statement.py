"""``nudgeflow ledger statement --month YYYY-MM``: finance closes a month. Per campaign and
currency the month rolled forward (``store.ledger.statement``), as a table, CSV or JSON, and
the check that it ties out to the ledger's entries: said in a line when it does; when it
does not, every difference with its figures on standard error and exit status 1."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.context import console, err_console, process_app
from cli.export import output, write_rows
from nudgeflow.errors import NudgeflowError
from nudgeflow.money import format_minor_units
from nudgeflow.timeutil import check_business_date, system_clock
from store import ledger

_MONTH = re.compile(r"(\d{4})-(\d{2})")
FORMATS = ("table", "csv", "json")


def parse_month(text: str, today: date) -> tuple[int, int]:
    """``YYYY-MM`` as (year, month), or one line saying what is wrong (``--month: …``)."""
    match = _MONTH.fullmatch(text.strip())
    expected = f"--month: expected a month as YYYY-MM, got {text!r}"
    if match is None:
        raise NudgeflowError(expected)
    year, month = int(match[1]), int(match[2])
    if not 1 <= month <= 12:
        raise NudgeflowError(f"{expected} (no such month)")
    try:
        check_business_date(date(year, month, 1), today)
    except ValueError as exc:
        raise NudgeflowError(f"--month: {exc}") from None
    return year, month


def statement_command(
    month: str = typer.Option(
        ..., "--month", metavar="YYYY-MM", help="The month to close (business dates)."
    ),
    fmt: str = typer.Option("table", "--format", metavar="FORMAT", help="table, csv or json."),
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write here instead of stdout."
    ),
) -> None:
    """A month's statement per campaign and currency, checked against the ledger's entries.

    Opening budget remaining, funded and defunded, reserved, issued, released, expired,
    spent by reward kind, and reserved and outstanding at the month's end. Exit 1, with the
    figures, when opening balances plus the month's movements are not the closing balances."""
    if fmt not in FORMATS:
        raise typer.BadParameter(f"expected table, csv or json, got {fmt!r}", param_hint="--format")
    year, number = parse_month(month, system_clock().date())
    with process_app().engine.connect() as connection:
        result = ledger.statement(connection, year, number)
    problems = result.mismatches()
    with output(out) as handle:
        if fmt == "table":
            _tables(result, console if out is None else Console(file=handle, width=100))
        elif fmt == "csv":
            write_rows(handle, ledger.statement_rows(result), ledger.statement_columns(result), fmt)
        else:
            document = {
                "month": result.month,
                "from": result.first_day.isoformat(),
                "to": result.last_day.isoformat(),
                "campaigns": [_json_line(row, result) for row in ledger.statement_rows(result)],
                "transactions": result.transactions,
                "entries": result.entries,
                "ties_out": not problems,
                "mismatches": problems,
            }
            handle.write(json.dumps(document, indent=2) + "\n")
    if problems:
        for problem in problems:
            err_console.print(
                f"statement does NOT tie out: {problem}", markup=False, soft_wrap=True
            )
        raise typer.Exit(1)
    summary = (
        f"ties out: {result.transactions:,} transactions and {result.entries:,} entries dated "
        f"{result.first_day.isoformat()} to {result.last_day.isoformat()}; for each of "
        f"{len(result.lines):,} campaigns, the opening balances plus the month's movements "
        "are the closing balances, and funding moved what was funded less what was defunded"
    )
    # With CSV or JSON on standard output the line goes to standard error, so the output
    # stays a clean document.
    (console if fmt == "table" or out is not None else err_console).print(
        summary, markup=False, soft_wrap=True
    )


def _json_line(row: dict[str, str], result: ledger.Statement) -> dict[str, object]:
    kinds = {kind: row.pop(f"spent_{kind}") for kind in result.reward_kinds}
    return {**row, "spent_by_reward_kind": kinds}


def _tables(result: ledger.Statement, console: Console) -> None:
    if not result.lines:
        console.print(
            f"no ledger entries up to {result.last_day.isoformat()}: nothing to close",
            markup=False,
        )
        return
    first, last = result.first_day.strftime("%d %b"), result.last_day.strftime("%d %b %Y")
    for line in result.lines:

        def money(amount: int, line: ledger.StatementLine = line) -> str:
            return format_minor_units(amount, line.currency)

        table = Table(
            title=f"{line.campaign_id} ({line.currency}), {result.month}", title_justify="left"
        )
        table.add_column("line")
        table.add_column(line.currency, justify="right")
        rows: list[tuple[str, int] | None] = [
            (f"budget remaining, opening {first}", line.budget_remaining_opening),
            ("  + funded", line.funded),
            ("  - defunded", line.defunded),
            ("  - reserved", line.reserved),
            ("  + released before issue", line.released_reserved),
            ("  + released after issue", line.released_outstanding),
            ("  + expired", line.expired),
            ("  +/- redemption differences", line.redemption_differences),
            (f"budget remaining, closing {last}", line.budget_remaining_closing),
            None,
            ("reserved, opening", line.reserved_opening),
            ("  + reserved", line.reserved),
            ("  - issued", line.issued),
            ("  - released before issue", line.released_reserved),
            ("reserved, closing", line.reserved_closing),
            None,
            ("outstanding, opening", line.outstanding_opening),
            ("  + issued", line.issued),
            ("  - redeemed (at the reserved estimate)", line.redeemed_at_estimate),
            ("  - expired", line.expired),
            ("  - released after issue", line.released_outstanding),
            ("outstanding, closing", line.outstanding_closing),
            None,
            *(
                (f"spent in month: {kind}", line.spent_by_reward_kind.get(kind, 0))
                for kind in result.reward_kinds
            ),
            ("spent in month", line.spent_in_month),
            ("spent to date", line.spent_to_date),
        ]
        for row in rows:
            if row is None:
                table.add_section()
            else:
                table.add_row(row[0], money(row[1]))
        console.print(table)
