"""The HTML report's sections: for each, a heading, a sentence on how to read it, a chart
(``night.charts``) and a table with every number the chart draws. Pure: the figures
gathered by ``night.html_report`` in, ``Section`` values out; the Jinja2 template lays them
out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from markupsafe import Markup

from night.charts import Segment, bar_chart, interval_chart, line_chart, stacked_bars
from night.impact import ImpactReport
from night.pathways import PathwayFigures
from nudgeflow.money import format_minor_units
from store.ledger import CampaignBalances
from store.report_sql import NightCounts


@dataclass(frozen=True)
class Table:
    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    id: str
    heading: str
    intro: str
    chart: Markup | None
    table: Table
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Part:
    """A heading of its own over its sections (or a sentence when it has none)."""

    id: str
    heading: str
    sections: tuple[Section, ...]
    empty: str = ""


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def stage_sections(
    stages: Sequence[str],
    at_start: dict[str, int],
    at_end: dict[str, int],
    entries: dict[tuple[date, str], int],
    start: date,
    end: date,
) -> list[Section]:
    before = start - timedelta(days=1)
    funnel = Section(
        "stage-funnel",
        "Stage funnel",
        f"Members in each lifecycle stage at the end of {end.isoformat()}, lowest stage "
        f"first, and how many were there at the end of {before.isoformat()}.",
        bar_chart(
            "Members per stage",
            f"Horizontal bars: members in each stage at the end of {end.isoformat()}.",
            [(stage, at_end.get(stage, 0)) for stage in stages],
            [f"{at_end.get(stage, 0):,}" for stage in stages],
        ),
        Table(
            "Members per stage",
            ("stage", f"members {before.isoformat()}", f"members {end.isoformat()}", "change"),
            tuple(
                (
                    stage,
                    f"{at_start.get(stage, 0):,}",
                    f"{at_end.get(stage, 0):,}",
                    f"{at_end.get(stage, 0) - at_start.get(stage, 0):+,}",
                )
                for stage in stages
            ),
        ),
    )
    days = _days(start, end)
    series = [(stage, [entries.get((day, stage), 0) for day in days]) for stage in stages]
    moves = Section(
        "stage-moves",
        "Moves into each stage, per day",
        "Members who moved into a stage on each day (up or down; the stages found by the "
        "very first refresh are not moves).",
        line_chart(
            "Moves into each stage per day",
            f"One line per stage, from {start.isoformat()} to {end.isoformat()}: members who "
            "entered the stage that day.",
            [day.isoformat() for day in days],
            series,
        ),
        Table(
            "Members entering each stage, per day",
            ("day", *stages),
            tuple(
                (day.isoformat(), *(f"{entries.get((day, s), 0):,}" for s in stages))
                for day in days
            ),
        ),
    )
    return [funnel, moves]


def pathway_sections(pathways: Sequence[PathwayFigures]) -> list[Section]:
    sections = []
    for figures in pathways:
        steps = [("started", figures.started, 1.0 if figures.started else None)]
        steps += [(a.name or a.id, a.completed, a.share) for a in figures.key_actions]
        steps.append(("reached the end", figures.ended, figures.ended_share))
        median = figures.median_days_to_end
        notes = [f"Target impact: {figures.target_impact}"] if figures.target_impact else []
        if median is not None:
            notes.append(f"Median days from start to end: {median:g}")
        notes += [
            f"Indicator {i.name or i.id}: {_indicator(i.on_pathway, i.kind)} per member on the "
            f"pathway ({i.members_on:,}) against {_indicator(i.off_pathway, i.kind)} off it "
            f"({i.members_off:,})"
            for i in figures.indicators
        ]
        sections.append(
            Section(
                f"pathway-{figures.id}",
                f"Pathway: {figures.name}",
                f"Members who started the pathway, completed each key action and reached its "
                f"end, as of {figures.as_of.isoformat()}.",
                bar_chart(
                    f"{figures.name}: funnel",
                    "Horizontal bars: members who started, completed each key action, and "
                    "reached the end.",
                    [(label, n) for label, n, _ in steps],
                    [f"{n:,} ({_percent(share)})" for _, n, share in steps],
                ),
                Table(
                    f"{figures.name}: members at each step",
                    ("step", "members", "share of those started"),
                    tuple((label, f"{n:,}", _percent(share)) for label, n, share in steps),
                ),
                notes=tuple(notes),
            )
        )
    return sections


def _indicator(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    return _percent(value) if kind == "retention" else f"{value:.2f}"


def nights_section(nights: Sequence[NightCounts]) -> Section:
    def rate(part: int, whole: int) -> str:
        return _percent(part / whole if whole else None)

    return Section(
        "nights",
        "Sends and responses per night",
        "Per night: the emails sent and how many of them were answered inside the "
        "campaign's response window, beside the held-out members and their responses.",
        line_chart(
            "Sends and responses per night",
            "Four lines over the nights: sent, responded, held out, held out and responded.",
            [n.as_of.isoformat() for n in nights],
            [
                ("sent", [n.sent for n in nights]),
                ("responded", [n.responded for n in nights]),
                ("held out", [n.held_out for n in nights]),
                ("held out, responded", [n.held_out_responded for n in nights]),
            ],
        )
        if nights
        else None,
        Table(
            "Sends and responses per night",
            ("night", "sent", "responded", "response rate", "held out", "held out responded"),
            tuple(
                (
                    n.as_of.isoformat(),
                    f"{n.sent:,}",
                    f"{n.responded:,}",
                    rate(n.responded, n.sent),
                    f"{n.held_out:,}",
                    f"{n.held_out_responded:,} ({rate(n.held_out_responded, n.held_out)})",
                )
                for n in nights
            ),
        ),
    )


SPEND_PARTS = ("spent", "outstanding", "reserved", "budget remaining")


def spend_sections(budgets: Sequence[CampaignBalances], end: date) -> list[Section]:
    sections = []
    for currency in sorted({b.currency for b in budgets}):
        rows = [b for b in budgets if b.currency == currency]

        def money(amount: int, currency: str = currency) -> str:
            return format_minor_units(amount, currency)

        sections.append(
            Section(
                f"spend-{currency.lower()}",
                f"Spend against budget ({currency})",
                f"Per campaign at the end of {end.isoformat()}: what its rewards cost "
                "(spent), what is issued and not yet used (outstanding), held for rewards "
                "not yet issued (reserved) and what is left; together they make the budget "
                "funded so far.",
                stacked_bars(
                    f"Spend against budget per campaign ({currency})",
                    "One bar per campaign, its length the budget funded so far, split into "
                    "spent, outstanding, reserved and budget remaining.",
                    [
                        (
                            b.campaign_id,
                            [
                                Segment("spent", b.spent),
                                Segment("outstanding", b.outstanding),
                                Segment("reserved", b.reserved),
                                Segment("budget remaining", b.budget),
                            ],
                        )
                        for b in rows
                    ],
                    SPEND_PARTS,
                ),
                Table(
                    f"Spend against budget per campaign ({currency})",
                    ("campaign", "funded to date", *SPEND_PARTS, "spent share"),
                    tuple(
                        (
                            b.campaign_id,
                            money(b.funded),
                            money(b.spent),
                            money(b.outstanding),
                            money(b.reserved),
                            money(b.budget),
                            _percent(b.spent / b.funded if b.funded else None),
                        )
                        for b in rows
                    ),
                ),
            )
        )
    return sections


def uplift_section(impact: ImpactReport) -> Section:
    measured = [c for c in impact.campaigns if c.uplift is not None]

    def label(campaign_id: str, variant: str | None) -> str:
        return campaign_id if variant is None else f"{campaign_id} / {variant}"

    return Section(
        "uplift",
        "Uplift per campaign",
        "Response rate of the members nudged minus that of the held-out members, in "
        "percentage points, with its 95 % interval (Newcombe). An interval that crosses the "
        "dashed zero line is no measurable effect yet.",
        interval_chart(
            "Uplift with its 95 % interval per campaign",
            "A dot at each campaign's uplift in percentage points and a line across its 95 % "
            "interval, around a dashed zero line.",
            [
                (
                    label(c.campaign_id, c.variant),
                    c.uplift.estimate * 100,
                    c.uplift.low * 100,
                    c.uplift.high * 100,
                )
                for c in measured
                if c.uplift is not None
            ],
        )
        if measured
        else None,
        Table(
            "Uplift per campaign",
            (
                "campaign",
                "treated",
                "held out",
                "treated rate",
                "held-out rate",
                "uplift",
                "95 % interval",
                "reading",
            ),
            tuple(
                (
                    label(c.campaign_id, c.variant),
                    f"{c.treated:,}",
                    f"{c.held_out:,}",
                    _percent(c.treated_rate),
                    _percent(c.held_out_rate),
                    "–" if c.uplift is None else f"{c.uplift.estimate * 100:+.1f} pts",
                    "–"
                    if c.uplift is None
                    else f"{c.uplift.low * 100:+.1f} to {c.uplift.high * 100:+.1f} pts",
                    c.verdict,
                )
                for c in impact.campaigns
            ),
        ),
    )
