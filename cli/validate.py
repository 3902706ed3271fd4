"""``nudgeflow validate`` (every problem of every campaign file and template at once) and
``nudgeflow schema`` (the campaign JSON Schema for editors)."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bootstrap.app import App
from cli.context import process_app
from delivery.validation import campaign_schema_text, relative_paths, validate_campaigns
from nudgeflow.errors import NudgeflowError

SKIPPED = "note: skipped the check for event types never seen: "


def _seen_event_types(app: App) -> tuple[set[str] | None, str | None]:
    """Every event type in the database, or ``None`` and why the check is skipped."""
    from store.schema import events

    try:
        with app.engine.connect() as connection:
            types = set(connection.execute(select(events.c.type).distinct()).scalars())
    except (NudgeflowError, SQLAlchemyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"{SKIPPED}the database could not be read ({reason})"
    if not types:
        return None, f"{SKIPPED}the database has no events yet"
    return types, None


def validate() -> None:
    """Check every campaign, the lifecycle, the policy and every email template.

    Prints every problem as path:line:col: key: message. Exit status 1 when there are
    errors; warnings alone (e.g. an event type never seen in the data) exit 0.
    """
    app = process_app()
    settings = app.settings
    seen, note = _seen_event_types(app)
    report = validate_campaigns(
        settings.campaigns_dir,
        settings.templates_dir,
        seen_event_types=seen,
        as_of=app.clock().astimezone(settings.zone).date(),
        base_url=settings.public_base_url.rstrip("/"),
    )
    report = relative_paths(report, Path.cwd())
    for problem in report.problems:
        typer.echo(str(problem))
    if note:
        typer.echo(note)
    typer.echo(report.summary())
    if report.errors:
        raise typer.Exit(1)


def schema(
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write the schema to this file instead of printing it."
    ),
) -> None:
    """Print the JSON Schema of campaign files (for editor autocompletion)."""
    text = campaign_schema_text()
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise NudgeflowError(f"--out: cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {out}")
