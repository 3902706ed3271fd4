"""``nudgeflow impact``: per campaign (and variant), treated against held out — response
rates, the uplift with its 95 % interval, revenue, reward cost and the cost of each extra
response, with what can be concluded said in words (``night.impact``)."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from cli.context import console, process_app
from cli.options import date_option
from night.impact import CampaignImpact, ImpactReport, impact_report
from nudgeflow.money import format_minor_units


def impact(
    start: Annotated[
        date | None, date_option("--from", "First business date (the night that planned it).")
    ] = None,
    end: Annotated[date | None, date_option("--to", "Last business date.")] = None,
    campaign_id: str | None = typer.Option(
        None, "--campaign", metavar="ID", help="Only this campaign."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Did each campaign work? Over the actions planned in the period (every night without
    --from/--to): members sent the nudge against the held-out control group, the uplift in
    response rate with its 95 % interval, revenue per member, reward cost from the ledger,
    and the cost of each extra response once the effect is measured."""
    if start is not None and end is not None and end < start:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    app_ = process_app()
    report = impact_report(
        app_.engine,
        start=start,
        end=end,
        campaign=campaign_id,
        zone=app_.zone,
        currency=app_.settings.currency,
    )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    if not report.campaigns:
        which = f"campaign {campaign_id}" if campaign_id else "any campaign"
        console.print(f"no sent or held-out actions of {which} in the period", markup=False)
        return
    console.print(_table(report))
    for row in report.campaigns:
        name = row.campaign_id if row.variant is None else f"{row.campaign_id} [{row.variant}]"
        console.print(f"{name}: {row.verdict}", markup=False, soft_wrap=True)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _money(minor: float | None, currency: str) -> str:
    return "-" if minor is None else format_minor_units(round(minor), currency)


def _uplift(row: CampaignImpact) -> Text:
    if row.uplift is None:
        return Text("-")
    u = row.uplift
    text = f"{u.estimate * 100:+.1f} ({u.low * 100:+.1f} to {u.high * 100:+.1f})"
    return Text(text, style="green" if row.measured else ("red" if u.high < 0 else "dim"))


def _revenue(row: CampaignImpact) -> str:
    r = row.revenue_uplift
    if r is None:
        return "-"
    c = row.currency
    return f"{_money(r.estimate, c)} ({_money(r.low, c)} to {_money(r.high, c)})"


def _period(report: ImpactReport) -> str:
    start = report.start.isoformat() if report.start else "the first night"
    end = report.end.isoformat() if report.end else "the last"
    return f"{start} to {end}"


def _table(report: ImpactReport) -> Table:
    table = Table(
        title=f"Impact, nights {_period(report)} (uplift in points, 95 % intervals; "
        f"money in {report.currency})",
        title_justify="left",
        box=box.SIMPLE,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    table.add_column("campaign", no_wrap=True)
    # The variant column only when a campaign has variants ("all": the campaign as a whole).
    variants = any(row.variant is not None for row in report.campaigns)
    if variants:
        table.add_column("variant", no_wrap=True)
    for name in ("sent", "held out"):
        table.add_column(name, justify="right")
    table.add_column("responded", justify="right", no_wrap=True)
    table.add_column("uplift", no_wrap=True)
    table.add_column("revenue/member")
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("per extra", justify="right", no_wrap=True)
    for row in report.campaigns:
        name = "all" if row.variant is None else row.variant
        variant = [Text(f"{name} ★", style="bold green") if row.winner else name]
        table.add_row(
            row.campaign_id,
            *(variant if variants else []),
            f"{row.treated:,}",
            f"{row.held_out:,}",
            f"{_percent(row.treated_rate)} vs {_percent(row.held_out_rate)}",
            _uplift(row),
            _revenue(row),
            _money(row.cost_minor, row.currency),
            _money(row.cost_per_incremental_response_minor, row.currency),
        )
    return table
