"""``nudgeflow validate`` (every problem of every campaign file and template at once, as
text or JSON) and ``nudgeflow schema`` (the JSON Schemas of the files, for editors)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from bootstrap.app import App
from cli.context import process_app
from delivery.validation import ValidationReport, relative_paths, validate_campaigns
from nudgeflow.errors import NudgeflowError
from planning.schemas import SCHEMAS, schema_text

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


def _as_json(report: ValidationReport, notes: list[str]) -> str:
    problems = [
        {
            "path": p.path,
            "line": p.line,
            "column": p.column,
            "key": p.key,
            "message": p.message,
            "severity": p.severity,
        }
        for p in report.problems
    ]
    return json.dumps({"ok": report.errors == 0, "problems": problems, "notes": notes}, indent=2)


def validate(
    fmt: str = typer.Option(
        "text",
        "--format",
        metavar="FORMAT",
        help="text (one problem a line) or json (for tools and CI).",
    ),
) -> None:
    """Check every campaign, the lifecycle, the policy and every email template.

    Prints every problem as path:line:col: key: message (or, with --format json, an object
    {"ok", "problems": [{"path", "line", "column", "key", "message", "severity"}], "notes"}).
    Exit status 1 when there are errors; warnings alone (e.g. an event type never seen in
    the data) exit 0.
    """
    if fmt not in ("text", "json"):
        raise typer.BadParameter(f"expected text or json, got {fmt!r}", param_hint="--format")
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
    if fmt == "json":
        typer.echo(_as_json(report, [note] if note else []))
    else:
        for problem in report.problems:
            typer.echo(str(problem))
        if note:
            typer.echo(note)
        typer.echo(report.summary())
    if report.errors:
        raise typer.Exit(1)


def schema(
    kind: str = typer.Argument(
        "campaign",
        metavar="KIND",
        help="Which file: campaign (the default), lifecycle, policy or pathway.",
    ),
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write the schema to this file instead of printing it."
    ),
) -> None:
    """Print the JSON Schema of campaign, lifecycle, policy or pathway files (for editors).

    The shipped files point at docs/schema/<kind>.schema.json; regenerate those with
    nudgeflow schema <kind> --out docs/schema/<kind>.schema.json.
    """
    if kind not in SCHEMAS:
        choices = ", ".join(SCHEMAS)
        raise typer.BadParameter(f"expected one of {choices}, got {kind!r}", param_hint="KIND")
    text = schema_text(kind)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise NudgeflowError(f"--out: cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(f"wrote {out}")
