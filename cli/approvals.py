"""``nudgeflow approvals``: rewards that cost more than ``approval_above`` wait here for a
person's decision (the use cases are ``night.approvals``)."""

from __future__ import annotations

import getpass
import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from cli.actions import TABLE_STYLE
from cli.context import console, err_console, process_app
from cli.export import output, write_rows
from cli.help_format import CommandApp
from nudgeflow.money import Money

if TYPE_CHECKING:  # the use cases load the dispatcher: imported by the commands that run
    from night.approvals import Decided

app = CommandApp(
    help="Approvals: rewards above approval_above (policy.yaml or a campaign file) are "
    "reserved and wait here for a decision; undecided ones expire after "
    "approval_expires_after.",
    no_args_is_help=True,
)

_BY_HELP = "Who decides, recorded with the decision (default: your login name)."


def _by(by: str | None) -> str:
    name = (by or "").strip()
    if not name:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):
            name = ""
    if not name:
        raise typer.BadParameter("give --by NAME: your login name cannot be read")
    if len(name) > 200:
        raise typer.BadParameter("at most 200 characters", param_hint="--by")
    return name


@app.command("list")
def list_approvals(
    every: bool = typer.Option(False, "--all", help="Decided approvals too (who and when)."),
    campaign_id: str | None = typer.Option(
        None, "--campaign", metavar="ID", help="Only this campaign."
    ),
    member_id: str | None = typer.Option(
        None, "--member", metavar="MEMBER_ID", help="Only this member."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of a table."),
    as_csv: bool = typer.Option(
        False,
        "--csv",
        help="Print CSV with an empty decision column: fill it with approve or reject (and a "
        "reason), then `nudgeflow approvals decide FILE`.",
    ),
    out: Path | None = typer.Option(
        None, "--out", metavar="FILE", help="Write the JSON or CSV here instead of stdout."
    ),
) -> None:
    """The rewards waiting for a decision, oldest first."""
    from night.approvals import DECISION_COLUMNS, csv_row, listing

    if as_json and as_csv:
        raise typer.BadParameter("give at most one of --json and --csv")
    found = listing(process_app().engine, every=every, campaign_id=campaign_id, member_id=member_id)
    if as_json or as_csv:
        with output(out) as handle:
            if as_csv:
                write_rows(handle, (csv_row(a) for a in found), DECISION_COLUMNS, "csv")
            else:
                handle.write(json.dumps([a.as_dict() for a in found], indent=2) + "\n")
        if out is not None:
            console.print(f"wrote {len(found):,} approvals to {out}", markup=False)
        return
    if not found:
        console.print("no approvals" if every else "no rewards are waiting for approval")
        return
    table = Table(title="Approvals, oldest first (times in UTC)", **TABLE_STYLE)
    table.add_column("action", no_wrap=True)
    for name in ("campaign", "member"):
        table.add_column(name, overflow="fold")
    table.add_column("cost", justify="right", no_wrap=True)
    table.add_column("above", justify="right", no_wrap=True)
    table.add_column("expires", no_wrap=True)
    if every:
        table.add_column("decision")
    for a in found:
        cost = str(Money(a.cost_minor, a.currency)) if a.currency else ""
        decision = []
        if every:
            decision = [
                f"{a.decision} by {a.decided_by} {a.decided_at:%Y-%m-%d %H:%M}"
                if a.decision and a.decided_at
                else "waiting"
            ]
        table.add_row(
            a.action_id,
            a.campaign_id,
            a.member_id,
            cost,
            a.threshold,
            f"{a.expires_at:%Y-%m-%d %H:%M}",
            *decision,
        )
    console.print(table)
    noun = "approval" if len(found) == 1 else "approvals"
    console.print(f"{len(found):,} {noun}")


def _report(decided: Decided, verb: str, *, stop: bool = True) -> bool:
    """Print what was decided; a conflicting earlier decision exits 1 (``stop``) or is
    returned as True."""
    for action_id in decided.done:
        console.print(f"action {action_id}: {decided.decision}", markup=False)
    for action_id, before in decided.before.items():
        when = f"{before.decided_at:%Y-%m-%d %H:%M} UTC" if before.decided_at else ""
        line = f"action {action_id}: already {before.decision} by {before.decided_by} {when}"
        if before.decision == decided.decision:
            console.print(line, markup=False)
        else:
            err_console.print(f"{line}: not {verb}", markup=False)
    for action_id, late in decided.late.items():
        err_console.print(
            f"action {action_id}: expired at {late.expires_at:%Y-%m-%d %H:%M} UTC (the next "
            f"night releases its reservation): not {verb}",
            markup=False,
        )
    failed = bool(decided.conflicts() or decided.late)
    if failed and stop:
        raise typer.Exit(1)
    return failed


@app.command("approve")
def approve(
    action_ids: list[str] = typer.Argument(
        ..., metavar="ACTION_ID...", help="The actions to approve."
    ),
    by: str | None = typer.Option(None, "--by", metavar="NAME", help=_BY_HELP),
    dispatch: bool = typer.Option(
        False,
        "--dispatch",
        help="Issue and send them now instead of at the next nightly run (takes the run "
        "lease: refused while a night runs, which then sends them itself).",
    ),
) -> None:
    """Approve rewards: each is issued and its email sent by the next dispatch (the nightly
    run), or at once with --dispatch. Approving one already approved changes nothing."""
    from night.approvals import approve as approve_actions

    who = _by(by)
    app_ = process_app()
    if dispatch:
        app_.check_sending()  # before deciding: a setting that stops sending stops both
    decided = approve_actions(app_.engine, action_ids, by=who, now=app_.clock())
    failed = _report(decided, "approved", stop=False)  # said before dispatching
    if dispatch and decided.done:
        _dispatch_now(decided.done)
    if failed:
        raise typer.Exit(1)


def _dispatch_now(action_ids: list[str]) -> None:
    from cli.options import default_as_of
    from night.approvals import dispatch_approved

    app_ = process_app()
    night = app_.night(default_as_of(None, app_))
    dispatcher = app_.dispatcher(night)
    try:
        result = dispatch_approved(dispatcher, action_ids)
    finally:
        app_.issuer.close()
    counts = {o: result.total(o) for o in ("sent", "failed", "unknown", "deferred")}
    shown = ", ".join(f"{n:,} {o}" for o, n in counts.items() if n) or "nothing to do"
    console.print(f"dispatched now: {shown}", markup=False)
    for problem in result.problems[:20]:
        err_console.print(f"dispatch: {problem}", markup=False)


@app.command("reject")
def reject(
    action_ids: list[str] = typer.Argument(
        ..., metavar="ACTION_ID...", help="The actions to reject."
    ),
    reason: str = typer.Option(
        ..., "--reason", metavar="TEXT", help="Why: recorded with the action and shown by why."
    ),
    by: str | None = typer.Option(None, "--by", metavar="NAME", help=_BY_HELP),
) -> None:
    """Reject rewards: each reservation goes back to the budget and the action ends
    rejected with the reason; nothing is issued or sent."""
    from night.approvals import reject as reject_actions

    text = reason.strip()
    if not text:
        raise typer.BadParameter("give a reason", param_hint="--reason")
    who = _by(by)
    app_ = process_app()
    decided = reject_actions(
        app_.engine,
        dict.fromkeys(action_ids, text),
        by=who,
        now=app_.clock(),
        business_date=_business_today(),
    )
    _report(decided, "rejected")


def _business_today() -> date:
    app_ = process_app()
    return app_.clock().astimezone(app_.zone).date()


@app.command("decide")
def decide(
    path: Path = typer.Argument(
        ...,
        metavar="FILE",
        help="The CSV of `approvals list --csv` with its decision column filled in "
        "(approve, reject or empty; reject needs a reason).",
    ),
    by: str | None = typer.Option(None, "--by", metavar="NAME", help=_BY_HELP),
) -> None:
    """Decide many approvals from a CSV file: every row is checked first (a bad row stops
    the whole file, nothing decided), then the approvals and rejections are applied."""
    from night.approvals import approve as approve_actions
    from night.approvals import known, read_decisions
    from night.approvals import reject as reject_actions

    who = _by(by)
    decisions = read_decisions(path)
    if not decisions.approve and not decisions.reject:
        console.print(f"{path}: no row has a decision; nothing to do", markup=False)
        return
    app_ = process_app()
    # Every id is known, or nothing is decided (NotFoundError names them).
    known(app_.engine, [*decisions.approve, *decisions.reject])
    failed = False
    if decisions.approve:
        approved = approve_actions(app_.engine, decisions.approve, by=who, now=app_.clock())
        failed = _report(approved, "approved", stop=False)
    if decisions.reject:
        rejected = reject_actions(
            app_.engine,
            decisions.reject,
            by=who,
            now=app_.clock(),
            business_date=_business_today(),
        )
        failed = _report(rejected, "rejected", stop=False) or failed
    if failed:
        raise typer.Exit(1)
