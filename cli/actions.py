"""``nudgeflow actions``, ``nudgeflow sends`` and ``nudgeflow runs``: what the nightly runs
did, for operators — the actions and their states, every send, and how each run ended."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from cli.context import console, process_app
from cli.export import output, write_rows
from cli.help_format import CommandApp
from cli.options import AsOfFilter, date_option
from nudgeflow.errors import NudgeflowError
from store import reports

STATUS_STYLES = {"completed": "green", "failed": "red", "running": "yellow", "rewound": "dim"}
STATE_STYLES = {
    "sent": "green",
    "failed": "red",
    "unknown": "bold yellow",
    "held_out": "dim",
    "awaiting_approval": "yellow",
    "rejected": "red",
}
# Borderless with two spaces between columns: a full action id (32 characters) and the
# rest of an action still fit a 100-column terminal.
TABLE_STYLE: dict[str, Any] = {
    "title_justify": "left",
    "box": box.SIMPLE,
    "pad_edge": False,
    "padding": (0, 1, 0, 0),
}

app = CommandApp(
    help="Actions: one per campaign, member and occurrence, and the state each reached. "
    "Without a command, list them (newest night first) with the filters below.",
    invoke_without_command=True,
    # No sub-command lists the actions, so say the command is optional.
    subcommand_metavar="[COMMAND] [ARGS]...",
)
sends_app = CommandApp(
    help="Sends: the actions whose email went out, or may have (dispatch reached sending).",
    no_args_is_help=True,
)


def _blank(value: object) -> str:
    return "" if value is None else str(value)


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


def _stamp(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M}"


def format_duration(duration: timedelta | None) -> str:
    if duration is None:
        return ""
    seconds = max(duration.total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


# --- nudgeflow runs --------------------------------------------------------------------


def format_files(digest: str | None, commit: str | None, dirty: bool | None) -> str:
    """``3f2a9c01b7de @ 9e1c2d3a`` (``+`` after the commit: uncommitted changes): the first
    12 hex digits of the files' digest and 8 of the git commit; ``--json`` has them whole."""
    if digest is None:
        return ""
    if commit is None:
        return digest[:12]
    return f"{digest[:12]} @ {commit[:8]}{'+' if dirty else ''}"


def runs(
    limit: int = typer.Option(20, "--limit", min=1, metavar="N", help="How many runs to show."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """Past runs, newest first: how each ended, how long it took, what it planned and sent."""
    with process_app().engine.connect() as connection:
        listed = reports.list_runs(connection, limit)
    if as_json:
        typer.echo(json.dumps([r.as_dict() for r in listed], indent=2, ensure_ascii=False))
        return
    if not listed:
        console.print("no runs yet")
        return
    table = Table(title="Runs, newest first (times in UTC)", **TABLE_STYLE)
    table.add_column("run", justify="right")
    for name in ("as of", "status", "started"):
        table.add_column(name, no_wrap=True)
    table.add_column("duration", justify="right", no_wrap=True)
    for name in ("planned", "held out", "sent", "failed", "unknown"):
        table.add_column(name, justify="right")
    table.add_column("files", no_wrap=True)
    for r in listed:
        counts = (r.counts[k] for k in ("planned", "held_out", "sent", "failed", "unknown"))
        table.add_row(
            str(r.id),
            r.as_of.isoformat(),
            Text(r.status, style=STATUS_STYLES.get(r.status, "")),
            _stamp(r.started_at),
            format_duration(r.duration),
            *(_count(c) for c in counts),
            format_files(r.source_digest, r.git_commit, r.git_dirty),
        )
    console.print(table)
    for r in listed:
        if r.error:
            console.print(
                f"run {r.id} ({r.as_of.isoformat()}) {r.status}: {r.error}",
                markup=False,
                soft_wrap=True,
            )
    console.print(f"{len(listed):,} run{'' if len(listed) == 1 else 's'}")


# --- nudgeflow actions -----------------------------------------------------------------


@app.callback()
def list_actions(
    ctx: typer.Context,
    campaign_id: str | None = typer.Option(
        None, "--campaign", metavar="ID", help="Only this campaign."
    ),
    state: str | None = typer.Option(
        None,
        "--state",
        metavar="STATE",
        help=f"Only this state: {', '.join(reports.ACTION_STATES)}.",
    ),
    as_of: AsOfFilter = None,
    member_id: str | None = typer.Option(
        None, "--member", metavar="MEMBER_ID", help="Only this member."
    ),
    limit: int = typer.Option(100, "--limit", min=1, metavar="N", help="Show at most this many."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
) -> None:
    """List actions, newest night first (without a sub-command)."""
    if ctx.invoked_subcommand is not None:
        return
    if state is not None and state not in reports.ACTION_STATES:
        raise NudgeflowError(
            f"--state: no state {state!r}; use one of {', '.join(reports.ACTION_STATES)}"
        )
    with process_app().engine.connect() as connection:
        listing = reports.find_actions(
            connection,
            campaign_id=campaign_id,
            state=state,
            as_of=as_of,
            member_id=member_id,
            limit=limit,
        )
    if as_json:
        typer.echo(json.dumps(listing.actions, indent=2, ensure_ascii=False))
        return
    if listing.actions:
        console.print(_actions_table(listing.actions))
    shown, total = len(listing.actions), listing.total
    noun = "action" if total == 1 else "actions"
    if shown < total:
        console.print(f"{shown:,} of {total:,} {noun} shown (raise --limit to see more)")
    else:
        console.print(f"{total:,} {noun}")


@app.command("resolve")
def resolve(
    action_id: str = typer.Argument(
        ..., metavar="ACTION_ID", help="The action to settle (its state is unknown)."
    ),
    sent: bool = typer.Option(False, "--sent", help="The provider shows the email went out."),
    not_sent: bool = typer.Option(
        False, "--not-sent", help="The provider shows it did not: fail it, withdraw its reward."
    ),
) -> None:
    """Settle an unknown action once you have checked the provider (SendGrid's activity
    feed): --sent records it as sent (credits and invites are then spent); --not-sent fails
    it, withdraws its reward and releases its reservation. It is never re-sent."""
    if sent == not_sent:
        raise typer.BadParameter("give exactly one of --sent or --not-sent")
    # Imported here: listing actions should not load the dispatcher and its clients.
    from night.settle import resolve_unknown

    app_ = process_app()
    app_.check_signing_key()  # settling issues or withdraws rewards: signed invite links
    settings = app_.settings
    campaigns = {c.id: c for c in app_.load_campaigns().enabled}
    issuer = app_.issuer
    try:
        state = resolve_unknown(
            app_.engine,
            issuer,
            campaigns,
            action_id,
            sent=sent,
            now=app_.clock(),
            signing_key=settings.signing_key.get_secret_value(),
        )
    finally:
        issuer.close()
    console.print(f"action {action_id}: {state}", markup=False)


def _actions_table(listed: list[dict[str, Any]]) -> Table:
    # The JSON output has every column; the table only what an operator scans for.
    table = Table(title="Actions, newest night first", **TABLE_STYLE)
    # The id is what `actions resolve` takes: kept whole on one line, so it can be copied.
    table.add_column("action", no_wrap=True)
    for name in ("campaign", "member"):
        table.add_column(name, overflow="fold")
    for name in ("as of", "state"):
        table.add_column(name, no_wrap=True)
    # A/B/n variants: shown when any listed action has one.
    variants = any(a.get("variant") for a in listed)
    if variants:
        table.add_column("variant", no_wrap=True)
    # Approvals: shown when any listed action waited for one (who decided, and when).
    approvals = any(a.get("approval") for a in listed)
    if approvals:
        table.add_column("approval")
    table.add_column("reason")
    for a in listed:
        variant = [_blank(a.get("variant"))] if variants else []
        approval = [approval_text(a.get("approval"))] if approvals else []
        table.add_row(
            a["action_id"],
            a["campaign_id"],
            a["member_id"],
            a["as_of"],
            Text(a["state"], style=STATE_STYLES.get(a["state"], "")),
            *variant,
            *approval,
            _blank(a["reason"]),
        )
    return table


def approval_text(approval: dict[str, Any] | None) -> str:
    """``waiting until …``, or the decision with who and when (instants in UTC)."""
    if not approval:
        return ""
    if approval["decision"] is None:
        return f"waiting until {approval['expires_at'][:16].replace('T', ' ')}"
    when = (approval["decided_at"] or "")[:16].replace("T", " ")
    return f"{approval['decision']} by {approval['decided_by']} {when}"


# --- nudgeflow sends export ------------------------------------------------------------


@sends_app.command("export")
def export_sends(
    fmt: str = typer.Option("csv", "--format", metavar="FORMAT", help="csv or json."),
    start: Annotated[
        date | None, date_option("--from", "First business date (the night that planned it).")
    ] = None,
    end: Annotated[date | None, date_option("--to", "Last business date.")] = None,
    campaign_id: str | None = typer.Option(
        None, "--campaign", metavar="ID", help="Only this campaign."
    ),
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write here instead of stdout."
    ),
) -> None:
    """Every send (sending, sent, unknown, and failed after sending began) with its provider
    message id, reward reference and timestamps in ISO 8601 UTC, oldest first."""
    if fmt not in ("csv", "json"):
        raise typer.BadParameter(f"expected csv or json, got {fmt!r}", param_hint="--format")
    if start is not None and end is not None and end < start:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    with process_app().engine.connect() as connection, output(out) as handle:
        rows = reports.iter_sends(connection, start, end, campaign_id)
        count = write_rows(handle, rows, reports.SEND_COLUMNS, fmt)
    if out is not None:
        console.print(f"exported {count:,} sends to {out}", markup=False)
