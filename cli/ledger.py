"""``nudgeflow ledger``: the reward ledger for finance — export, balances (now or at a past
date), a month's statement (``cli.ledger_statement``), verify, and the chain's head exported
to be kept outside the database."""

from __future__ import annotations

import json
import re
from datetime import UTC, date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from cli.context import console, err_console, process_app
from cli.export import output, write_rows
from cli.help_format import CommandApp
from cli.ledger_statement import statement_command
from cli.options import AS_OF_HELP, date_option
from nudgeflow.errors import NudgeflowError
from nudgeflow.money import format_minor_units
from store import ledger

app = CommandApp(
    help="The reward ledger: export, balances, a month's statement, verify, head.",
    no_args_is_help=True,
)
app.command("statement")(statement_command)


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
    as_of: Annotated[
        date | None,
        date_option(
            "--as-of",
            f"{AS_OF_HELP}: the balances at the end of that business date (its "
            "transactions and the earlier ones); without it, now.",
        ),
    ] = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Balances per campaign (budget remaining, reserved, outstanding, spent and funded to
    date) and of each funding account, now or at the end of a past business date."""
    with process_app().engine.connect() as connection:
        campaigns = ledger.campaign_balances(connection, as_of=as_of)
        funding = [b for b in ledger.balances(connection, as_of) if b.kind == "funding"]
    columns = {
        "budget_remaining": "budget",
        "reserved": "reserved",
        "outstanding": "outstanding",
        "spent_to_date": "spent",
        "funded_to_date": "funded",
    }
    if as_json:
        document = {
            "as_of": as_of.isoformat() if as_of is not None else None,
            "campaigns": [
                {
                    "campaign_id": c.campaign_id,
                    "currency": c.currency,
                    **{
                        name: format_minor_units(getattr(c, field), c.currency)
                        for name, field in columns.items()
                    },
                }
                for c in campaigns.values()
            ],
            "funding": [
                {"account": b.account, "currency": b.currency, "balance": b.amount} for b in funding
            ],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    when = f" at the end of {as_of.isoformat()}" if as_of is not None else ""
    if not campaigns:
        console.print(f"the ledger is empty{when}", markup=False)
        return
    table = Table(title=f"Ledger balances per campaign{when}")
    table.add_column("campaign")
    table.add_column("currency")
    for name in columns:
        table.add_column(name.replace("_", " "), justify="right")
    for c in campaigns.values():
        amounts = (format_minor_units(getattr(c, field), c.currency) for field in columns.values())
        table.add_row(c.campaign_id, c.currency, *amounts)
    console.print(table)
    for b in funding:
        # The funding account goes negative by what it handed out: show it as funds given.
        console.print(f"{b.account}: {b.amount} {b.currency}", markup=False)


@app.command("verify")
def verify(
    head: Path | None = typer.Option(
        None,
        "--head",
        metavar="FILE",
        help="A head exported by 'ledger head': the chain must still reach it.",
    ),
) -> None:
    """Check the whole ledger; exit 1 naming the first broken transaction.

    Every transaction balances, the hash chain is intact (keyed transactions under
    NUDGEFLOW_LEDGER__KEY and the retired keys), no campaign has committed more than it was
    funded, and with --head the chain still passes through the exported head."""
    exported = read_head(head) if head is not None else None
    app_ = process_app()
    with app_.engine.connect() as connection:
        result = ledger.verify(connection, head=exported)
    if not result.ok:
        for problem in result.problems:
            err_console.print(f"ledger BROKEN: {problem}", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    console.print(
        f"ledger OK: {result.transactions:,} transactions, {result.entries:,} entries, "
        f"{result.campaigns:,} campaigns; head hash {result.head_hash}",
        markup=False,
        soft_wrap=True,
    )
    for line in chain_lines(result, app_.ledger_keys.current is not None, exported):
        console.print(line, markup=False, soft_wrap=True)


def chain_lines(
    result: ledger.VerifyResult, key_set: bool, head: ledger.LedgerHead | None
) -> list[str]:
    """What the verified chain proves, in words (docs/finance.md, "What the chain proves")."""
    first = result.keyed_from
    if first is None and key_set:
        lines = [
            "hash chain: no transaction is keyed yet; the ledger key is set, so the next one "
            "starts the keyed chain (if this ledger was keyed before, it has been rewritten)"
        ]
    elif first is None:
        lines = [
            "hash chain: not keyed: whoever can write the database can rebuild it unnoticed; "
            "set NUDGEFLOW_LEDGER__KEY, or keep exported heads (nudgeflow ledger head)"
        ]
    elif result.unchecked:
        lines = [
            f"hash chain: keyed from seq {first}, NOT checked: no ledger key given "
            f"(NUDGEFLOW_LEDGER__KEY), so from seq {first} on only the links and the money "
            "were checked"
        ]
    else:
        before = {1: "", 2: "; seq 1 was written before the key"}.get(
            first, f"; seq 1–{first - 1} were written before the key"
        )
        keys = ", ".join(result.key_ids)
        lines = [f"hash chain: keyed from seq {first} with ledger key {keys}, checked{before}"]
    if head is not None:
        lines.append(f"exported head: the chain still passes through seq {head.seq}")
    return lines


def read_head(path: Path) -> ledger.LedgerHead:
    """An exported head file, or one line saying what is wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NudgeflowError(f"--head: cannot read {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise NudgeflowError(f"--head: {path} is not a head exported by `ledger head`") from None
    seq = document.get("seq") if isinstance(document, dict) else None
    digest = document.get("hash") if isinstance(document, dict) else None
    if (
        not isinstance(seq, int)
        or seq < 1
        or not isinstance(digest, str)
        or not re.fullmatch(r"[0-9a-f]{64}", digest)
    ):
        raise NudgeflowError(
            f"--head: {path} has no seq (a whole number) and hash (64 hex digits) as "
            "`ledger head` writes them"
        )
    return ledger.LedgerHead(seq, digest)


@app.command("head")
def head(
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write here instead of stdout."
    ),
) -> None:
    """Export the chain's head (seq and hash) for finance to keep outside the database.

    The ledger is verified first. Keep the file where the database's administrators cannot
    change it: `ledger verify --head FILE` later proves that nothing up to it was rewritten
    and nothing was removed from the end."""
    app_ = process_app()
    with app_.engine.connect() as connection:
        result = ledger.verify(connection)
    if not result.ok:
        for problem in result.problems:
            err_console.print(f"ledger BROKEN: {problem}", markup=False, soft_wrap=True)
        err_console.print("no head exported: the ledger does not verify", markup=False)
        raise typer.Exit(1)
    if result.transactions == 0:
        raise NudgeflowError("the ledger is empty: there is no head to export yet")
    document = {
        "seq": result.head_seq,
        "hash": result.head_hash,
        "transactions": result.transactions,
        "exported_at": app_.clock().astimezone(UTC).isoformat(timespec="seconds"),
    }
    with output(out) as handle:
        handle.write(json.dumps(document, indent=2) + "\n")
    if out is not None:
        console.print(
            f"exported the ledger head, seq {result.head_seq}, to {out}: keep it away from "
            "the database",
            markup=False,
        )
