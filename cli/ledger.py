"""``nudgeflow ledger``: the reward ledger for finance — export, balances, verify."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.context import console, err_console, process_app
from cli.export import output, write_rows
from cli.help_format import CommandApp
from cli.options import date_option
from nudgeflow.money import format_minor_units
from store import ledger

app = CommandApp(help="The reward ledger: export, balances, verify.", no_args_is_help=True)


@app.command("export")
def export(
    start: Annotated[date, date_option("--from", "First business date.")],
    end: Annotated[date, date_option("--to", "Last business date.")],
    campaign: str | None = typer.Option(
        None, "--campaign", metavar="ID", help="Only this campaign."
    ),
    fmt: str = typer.Option("csv", "--format", metavar="FORMAT", help="csv or json."),
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write here instead of stdout."
    ),
) -> None:
    """One row per ledger entry of the transactions dated in the period (inclusive)."""
    if fmt not in ("csv", "json"):
        raise typer.BadParameter(f"expected csv or json, got {fmt!r}", param_hint="--format")
    if end < start:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    with process_app().engine.connect() as connection, output(out) as handle:
        rows = ledger.export_entries(connection, start, end, campaign)
        count = write_rows(handle, rows, ledger.EXPORT_COLUMNS, fmt)
    if out is not None:
        console.print(f"exported {count:,} entries to {out}", markup=False)


@app.command("balances")
def balances(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Balances per campaign (budget, reserved, outstanding, spent, funded) and funding."""
    with process_app().engine.connect() as connection:
        campaigns = ledger.campaign_balances(connection)
        funding = [b for b in ledger.balances(connection) if b.kind == "funding"]
    columns = ("budget", "reserved", "outstanding", "spent", "funded")
    if as_json:
        document = {
            "campaigns": [
                {
                    "campaign_id": c.campaign_id,
                    "currency": c.currency,
                    **{name: format_minor_units(getattr(c, name), c.currency) for name in columns},
                }
                for c in campaigns.values()
            ],
            "funding": [
                {"account": b.account, "currency": b.currency, "balance": b.amount} for b in funding
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    if not campaigns:
        console.print("the ledger is empty")
        return
    table = Table(title="Ledger balances per campaign")
    table.add_column("campaign")
    table.add_column("currency")
    for name in columns:
        table.add_column(name, justify="right")
    for c in campaigns.values():
        amounts = (format_minor_units(getattr(c, name), c.currency) for name in columns)
        table.add_row(c.campaign_id, c.currency, *amounts)
    console.print(table)
    for b in funding:
        # The funding account goes negative by what it handed out: show it as funds given.
        console.print(f"{b.account}: {b.amount} {b.currency}", markup=False)


@app.command("verify")
def verify() -> None:
    """Check every transaction balances, the hash chain is intact, and no campaign has
    committed more than it was funded. Exit 1 naming the first broken transaction."""
    with process_app().engine.connect() as connection:
        result = ledger.verify(connection)
    if result.ok:
        console.print(
            f"ledger OK: {result.transactions:,} transactions, {result.entries:,} entries, "
            f"{result.campaigns:,} campaigns; head hash {result.head_hash}",
            markup=False,
            soft_wrap=True,
        )
        return
    for problem in result.problems:
        err_console.print(f"ledger BROKEN: {problem}", markup=False, soft_wrap=True)
    raise typer.Exit(1)
