"""``nudgeflow report``: one self-contained HTML file of what the nudges achieved over a
period — the stage funnel and its moves per day, each pathway's funnel, sends and responses
per night, spend against budget per campaign, and uplift with its interval per campaign.

The file needs nothing but itself: the styles are inline, the charts inline SVG drawn by
``night.charts``, and it links to no other host, so it opens offline and can be mailed or
archived as it is. Every chart has its numbers in a table below it (``night.report_view``).
The figures come from the use cases the commands share (``impact_report``,
``pathway_report``), the ledger's balances at the period's end and ``store.report_sql``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import Engine

from night.impact import impact_report
from night.pathways import pathway_report
from night.report_view import (
    Part,
    nights_section,
    pathway_sections,
    spend_sections,
    stage_sections,
    uplift_section,
)
from nudgeflow.errors import NudgeflowError
from planning.campaign_files import CampaignSet
from store import ledger
from store.report_sql import night_counts, stage_counts_on, stage_entries

TEMPLATE = "report.html.j2"
DEFAULT_DAYS = 30  # without a first date: the 30 nights that end with the last


@dataclass(frozen=True)
class Report:
    start: date
    end: date
    generated_at: datetime
    parts: tuple[Part, ...]
    html: str


def build_report(
    engine: Engine,
    campaign_set: CampaignSet,
    *,
    start: date,
    end: date,
    zone: ZoneInfo,
    currency: str,
    now: datetime,
) -> Report:
    """Gather the period's figures and render the report (``html``)."""
    stages = campaign_set.lifecycle.stage_ids
    with engine.connect() as connection:
        at_start = stage_counts_on(connection, start - timedelta(days=1))
        at_end = stage_counts_on(connection, end)
        entries = stage_entries(connection, start, end)
        nights = night_counts(connection, start, end)
        budgets = list(ledger.campaign_balances(connection, as_of=end).values())
    known = list(stages) + sorted(set(at_end) - set(stages))
    pathways = pathway_report(engine, campaign_set, as_of=end, zone=zone)
    impact = impact_report(engine, start=start, end=end, zone=zone, currency=currency)
    parts = (
        Part(
            "stages",
            "Lifecycle stages",
            tuple(stage_sections(known, at_start, at_end, entries, start, end)),
        ),
        Part(
            "pathways",
            "Pathways",
            tuple(pathway_sections(pathways)),
            "No pathways are defined (campaigns/pathways/*.yaml).",
        ),
        Part("sends", "Sends and responses", (nights_section(nights),)),
        Part(
            "spend",
            "Spend against budget",
            tuple(spend_sections(budgets, end)),
            f"No campaign has money in the ledger by {end.isoformat()}.",
        ),
        Part("impact", "Impact", (uplift_section(impact),)),
    )
    html = (
        _environment()
        .get_template(TEMPLATE)
        .render(start=start, end=end, generated_at=now, currency=currency, parts=parts)
    )
    return Report(start, end, now, parts, html)


def write_report(report: Report, out: Path) -> Path:
    """Write the report's file (creating its folder); one line when it cannot be."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report.html, encoding="utf-8")
    except OSError as exc:
        raise NudgeflowError(f"cannot write the report to {out}: {exc.strerror}") from None
    return out


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("night", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
