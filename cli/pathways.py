"""``nudgeflow pathways``: each pathway's funnel as of a date (``night.pathways``).

Nothing is written. The pathways are the files in ``campaigns/pathways/``; a problem in any
campaign file, pathway included, is one ``path:line:col`` line per problem (as ``validate``).
"""

from __future__ import annotations

import json

import typer
from rich import box
from rich.table import Table

from cli.context import console, process_app
from cli.options import AsOf, default_as_of
from night.pathways import PathwayFigures, pathway_report

_TABLE = {"box": box.SIMPLE, "pad_edge": False}


def _percent(share: float | None) -> str:
    return "–" if share is None else f"{share:.1%}"


def _value(value: float | None, kind: str) -> str:
    if value is None:
        return "–"
    return f"{value:.1%}" if kind == "retention" else f"{value:.2f}"


def _print(figures: PathwayFigures) -> None:
    console.print(f"\n{figures.id}: {figures.name}", markup=False)
    console.print(f"  target impact: {figures.target_impact}", markup=False)
    median = (
        "no member has reached the end"
        if figures.median_days_to_end is None
        else f"median {figures.median_days_to_end:g} days from start to end"
    )
    console.print(
        f"  started {figures.started:,} · reached the end {figures.ended:,} "
        f"({_percent(figures.ended_share)}) · {median}",
        markup=False,
    )
    actions = Table(**_TABLE)  # type: ignore[arg-type]
    actions.add_column("key action")
    actions.add_column("completed", justify="right")
    actions.add_column("share of started", justify="right")
    for action in figures.key_actions:
        actions.add_row(action.id, f"{action.completed:,}", _percent(action.share))
    console.print(actions)
    if not figures.indicators:
        return
    indicators = Table(**_TABLE)  # type: ignore[arg-type]
    indicators.add_column("indicator")
    indicators.add_column("on the pathway", justify="right")
    indicators.add_column("not on it", justify="right")
    for i in figures.indicators:
        on, off = _value(i.on_pathway, i.kind), _value(i.off_pathway, i.kind)
        indicators.add_row(f"{i.id} ({i.kind})", on, off)
    console.print(indicators)


def pathways(
    as_of: AsOf = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Each pathway's funnel: members started, key actions, reached the end, indicators.

    The pathways are the files in campaigns/pathways/ (see docs/pathways.md). With --json:
    {"as_of", "pathways": [{"id", "name", "target_impact", "started", "key_actions": [{"id",
    "name", "completed", "share"}], "ended", "ended_share", "median_days_to_end",
    "indicators": [{"id", "name", "kind", "on_pathway", "off_pathway", "members_on",
    "members_off"}]}]}.
    """
    app = process_app()
    day = default_as_of(as_of, app)
    campaign_set = app.load_campaigns()
    report = pathway_report(app.engine, campaign_set, as_of=day, zone=app.zone)
    if as_json:
        document = {"as_of": day.isoformat(), "pathways": [f.as_dict() for f in report]}
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    console.print(f"Pathways as of {day:%Y-%m-%d}", markup=False)
    if not report:
        console.print("no pathways: add files to campaigns/pathways/ (see docs/pathways.md)")
    for figures in report:
        _print(figures)
