"""``nudgeflow simulate``: backtest a campaign set over the stored history before it goes
live, in a scratch copy of the database (``night.simulate``); with ``--compare``, two
campaign folders side by side. The real database is only read; nothing is sent or issued.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from cli.context import console, err_console, process_app
from cli.options import date_option
from domain.backtest import CampaignSummary, Compared
from night.simulate import (
    ASSUMPTION,
    Backtest,
    Comparison,
    check_period,
    compare_sets,
    load_campaigns,
    simulate,
)
from nudgeflow.money import format_minor_units
from planning.campaign_files import CampaignSet


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does, so the scratch copy is still deleted."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def simulate_command(
    start: Annotated[date, date_option("--from", "First night to simulate, YYYY-MM-DD.")],
    end: Annotated[
        date, date_option("--to", "Last night to simulate, YYYY-MM-DD (at most 366 nights).")
    ],
    campaigns_dir: Path | None = typer.Option(
        None,
        "--campaigns",
        metavar="DIR",
        help="The campaign folder to simulate; default: NUDGEFLOW_CAMPAIGNS_DIR.",
    ),
    compare_dir: Path | None = typer.Option(
        None,
        "--compare",
        metavar="DIR2",
        help="A second campaign folder, simulated over the same nights and shown beside it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Backtest campaigns before go-live: replay them night by night over the stored history
    in a scratch copy of the database (nothing in the real database changes, nothing is
    sent or issued), and show per campaign and ISO week the members selected, held out and
    excluded by reason, frequency caps hit, fatigue tags and reward cost against budget.
    Assumes no new responses beyond the stored events."""
    check_period(start, end)
    app = process_app()
    folder = campaigns_dir if campaigns_dir is not None else app.settings.campaigns_dir
    first = load_campaigns(folder, "--campaigns")
    second = load_campaigns(compare_dir, "--compare") if compare_dir is not None else None
    progress = _progress if sys.stderr.isatty() and not as_json else None

    def run(campaign_set: CampaignSet, where: Path) -> Backtest:
        return simulate(
            app.engine,
            campaign_set,
            start,
            end,
            folder=str(where),
            zone=app.zone,
            currency=app.settings.currency,
            clock=app.clock,
            progress=progress,
        )

    with _terminate_as_interrupt():
        a = run(first, folder)
        if second is None or compare_dir is None:
            _print_one(a, as_json)
            return
        b = run(second, compare_dir)
    _print_comparison(compare_sets(a, b), as_json)


def _progress(day: date) -> None:
    err_console.print(f"simulating {day:%Y-%m-%d}…", markup=False)


def _header(start: date, end: date, nights: int, what: str) -> None:
    """The assumption first, then what was simulated."""
    console.print(f"{ASSUMPTION[0].upper()}{ASSUMPTION[1:]}.", markup=False, soft_wrap=True)
    console.print(
        f"Backtest of {what}, nights {start:%Y-%m-%d} to {end:%Y-%m-%d} ({nights:,}), in a "
        "scratch copy of the database: nothing was sent, issued or written.",
        markup=False,
        soft_wrap=True,
    )


def _money(minor: int | None, currency: str | None) -> str:
    if minor is None:
        return "-"
    if currency is None:
        return "-" if minor == 0 else f"{minor:,}"
    return f"{format_minor_units(minor, currency)} {currency}"


def _reason_title(reason: str) -> str:
    return reason.replace("_", " ")


def _campaign_table(summary: CampaignSummary, budget: str | None) -> Table:
    """The campaign's weeks and total: one column per exclusion reason that removed someone."""
    rows = (*summary.weeks, summary.total)
    reasons = [r for r in summary.total.excluded if summary.total.excluded[r]]
    title = summary.campaign_id + (f" (budget {budget})" if budget else "")
    table = Table(
        title=title, title_justify="left", box=box.SIMPLE, pad_edge=False, padding=(0, 1, 0, 0)
    )
    table.add_column("week", no_wrap=True)
    for name in ("nights", "selected", "held out"):
        table.add_column(name, justify="right")
    for reason in reasons:
        table.add_column(_reason_title(reason), justify="right", overflow="fold")
    table.add_column("fatigue tags", justify="right")
    table.add_column("reward cost", justify="right", no_wrap=True)
    table.add_column("budget left", justify="right", no_wrap=True)
    for week in rows:
        table.add_row(
            week.week,
            f"{week.nights:,}",
            f"{week.selected:,}",
            f"{week.held_out:,}",
            *(f"{week.excluded.get(reason, 0):,}" for reason in reasons),
            f"{week.fatigue_tags:,}",
            _money(week.cost_minor, week.currency),
            _money(week.budget_left_minor, week.currency),
            end_section=week is summary.weeks[-1],
        )
    return table


def _print_one(backtest: Backtest, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(backtest.as_dict(), indent=2, ensure_ascii=False))
        return
    _header(backtest.start, backtest.end, backtest.nights, backtest.folder)
    if backtest.replaced_actions:
        console.print(
            f"The {backtest.replaced_actions:,} actions stored for these nights and later "
            "were left out of the copy: the simulated nights replace them.",
            markup=False,
            soft_wrap=True,
        )
    if not backtest.campaigns:
        console.print("no enabled campaigns in the folder")
        return
    console.print(
        "Per ISO week: members selected and held out, and excluded by each reason that "
        "removed someone (frequency cap among them); a member counts once per night.",
        markup=False,
        soft_wrap=True,
    )
    for summary in backtest.campaigns:
        console.print()
        console.print(_campaign_table(summary, backtest.budgets.get(summary.campaign_id)))


def _value(row: Compared, value: int | None) -> str:
    if value is None:
        return "-"
    if row.measure == "reward cost":
        return _money(value, row.currency)
    return f"{value:,}"


def _difference(row: Compared) -> str:
    diff = row.difference
    if row.measure == "reward cost" and row.currency is not None:
        text = format_minor_units(abs(diff), row.currency)
        return "0" if diff == 0 else f"{'+' if diff > 0 else '-'}{text}"
    return f"{diff:+,}" if diff else "0"


def _print_comparison(comparison: Comparison, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(comparison.as_dict(), indent=2, ensure_ascii=False))
        return
    a, b = comparison.a, comparison.b
    _header(a.start, a.end, a.nights, f"A = {a.folder} against B = {b.folder}")
    table = Table(box=box.SIMPLE, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("campaign", no_wrap=True)
    table.add_column("week", no_wrap=True)
    table.add_column("measure", no_wrap=True)
    table.add_column("A", justify="right", no_wrap=True)
    table.add_column("B", justify="right", no_wrap=True)
    table.add_column("B - A", justify="right", no_wrap=True)
    rows = [r for r in comparison.rows if r.measure == "selected" or r.a or r.b]
    for n, row in enumerate(rows):
        previous = rows[n - 1] if n else None
        last = n + 1 == len(rows) or rows[n + 1].campaign_id != row.campaign_id
        new_week = previous is None or (previous.campaign_id, previous.week) != (
            row.campaign_id,
            row.week,
        )
        table.add_row(
            row.campaign_id if previous is None or previous.campaign_id != row.campaign_id else "",
            row.week if new_week else "",
            row.measure,
            _value(row, row.a),
            _value(row, row.b),
            _difference(row),
            end_section=last,
        )
    console.print(table)
    console.print(
        "Measures that are 0 in both are left out (--json has them all); "
        "-: the campaign is not in that folder.",
        markup=False,
        soft_wrap=True,
    )
    for name, backtest in (("A", a), ("B", b)):
        for campaign_id, budget in backtest.budgets.items():
            console.print(f"budget of {campaign_id} in {name}: {budget}", markup=False)
