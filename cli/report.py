"""``nudgeflow report``: the HTML report of a period, one self-contained file that opens
offline (``night.html_report``)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Annotated

import typer

from cli.context import console, process_app
from cli.options import date_option, default_as_of
from night.html_report import DEFAULT_DAYS, build_report, write_report


def report(
    out: Path = typer.Option(..., "--out", metavar="FILE.html", help="Where to write it."),
    start: Annotated[
        date | None,
        date_option("--from", f"First business date; default: {DEFAULT_DAYS} days to --to."),
    ] = None,
    end: Annotated[
        date | None,
        date_option(
            "--to", "Last business date; default: the previous business day (the last night)."
        ),
    ] = None,
) -> None:
    """Write the HTML report of a period: stages, pathways, sends and responses per night,
    spend against budget and uplift per campaign, each chart with its numbers in a table.

    One self-contained file (inline styles, inline SVG charts): it opens offline and asks
    no other host for anything."""
    app = process_app()
    last = default_as_of(end, app)
    first = start if start is not None else last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    built = build_report(
        app.engine,
        app.load_campaigns(),
        start=first,
        end=last,
        zone=app.zone,
        currency=app.settings.currency,
        now=app.clock(),
    )
    write_report(built, out)
    console.print(
        f"wrote the report for {first.isoformat()} to {last.isoformat()} to {out}: open it "
        "in a browser (it needs no network)",
        markup=False,
        soft_wrap=True,
    )
