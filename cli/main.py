"""Entry point: assembles the sub-commands and turns ``NudgeflowError`` into exit codes."""

from __future__ import annotations

import sys

import typer

from cli.context import err_console
from nudgeflow import __version__
from nudgeflow.errors import NudgeflowError

app = typer.Typer(
    name="nudgeflow",
    help="Automated reward and nudge campaigns: lifecycle stages, campaigns as files, "
    "a nightly Prefect flow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        typer.echo(f"nudgeflow {__version__}")
        raise typer.Exit()


def _register() -> None:
    # Imported here so that `nudgeflow --version` stays fast and each command module
    # stays independent of the others.
    from cli import (
        actions,
        consent,
        db,
        demo,
        email,
        events,
        ledger,
        members,
        plan,
        profiles,
        rewards,
        run,
        serve,
        validate,
    )

    app.add_typer(db.app, name="db")
    app.add_typer(members.app, name="members")
    members.app.command("show")(profiles.show_member)
    members.app.command("consent")(consent.consent)
    app.add_typer(events.app, name="events")
    app.add_typer(ledger.app, name="ledger")
    ledger.app.command("reconcile")(rewards.reconcile)
    app.add_typer(rewards.gifts_app, name="gifts")
    app.add_typer(rewards.stripe_app, name="stripe")
    app.command("demo-data")(demo.demo_data)
    app.command("run")(run.run)
    app.command("serve")(serve.serve)
    app.command("stages")(profiles.stages)
    app.command("plan")(plan.plan)
    app.command("why")(plan.why)
    app.command("validate")(validate.validate)
    app.command("schema")(validate.schema)
    app.command("preview")(email.preview)
    app.command("unsubscribe")(email.unsubscribe)
    app.add_typer(actions.app, name="actions")
    app.add_typer(actions.sends_app, name="sends")
    app.command("runs")(actions.runs)


def main() -> None:
    _register()
    try:
        # Standalone mode: click reports usage errors itself (exit 2) and honours typer.Exit.
        app()
    except NudgeflowError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            err_console.print(f"error: {line}", markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
