"""Entry point: assembles the sub-commands and turns every error into one line and an exit
status (``nudgeflow.errors`` lists them).

What a user can cause arrives here as a ``NudgeflowError``, translated where it arose, or as
a database error that ``store.diagnosis`` recognises (it can arise on any statement). Any
other exception is a bug: one "internal error" line, exit status 70. ``--debug`` (or
``NUDGEFLOW_DEBUG=1``) prints the traceback first, for a bug report.
"""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass

import typer
from sqlalchemy.exc import DBAPIError

from cli.context import err_console
from cli.help_format import CommandApp
from nudgeflow import __version__
from nudgeflow.errors import INTERNAL_ERROR_EXIT, NudgeflowError
from settings.app import DEBUG_VARIABLE, debug_requested

app = CommandApp(
    name="nudgeflow",
    help="Automated reward and nudge campaigns: lifecycle stages, campaigns as files, "
    "a nightly Prefect flow.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@dataclass
class Options:
    """What the root options asked for, read once the command has ended."""

    debug: bool = False


OPTIONS = Options()


@app.callback(invoke_without_command=True)
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    debug: bool = typer.Option(
        False,
        "--debug",
        help=f"Print the traceback of an error (for a bug report); {DEBUG_VARIABLE}=1 does too.",
    ),
) -> None:
    OPTIONS.debug = OPTIONS.debug or debug
    if version:
        typer.echo(f"nudgeflow {__version__}")
        raise typer.Exit()


def _register() -> None:
    # Imported here so that `nudgeflow --version` stays fast and each command module
    # stays independent of the others. Once per process (tests render help in-process).
    if app.registered_groups:
        return
    from cli import (
        actions,
        approvals,
        consent,
        db,
        demo,
        email,
        events,
        impact,
        inbox,
        ledger,
        members,
        pathways,
        plan,
        profiles,
        rewards,
        run,
        serve,
        simulate,
        validate,
        web,
        worker,
    )
    from cli.report import report as report_command

    app.add_typer(db.app, name="db")
    app.add_typer(members.app, name="members")
    members.app.command("show")(profiles.show_member)
    members.app.command("consent")(consent.consent)
    app.add_typer(events.app, name="events")
    app.add_typer(ledger.app, name="ledger")
    app.add_typer(inbox.app, name="inbox")
    ledger.app.command("reconcile")(rewards.reconcile)
    app.add_typer(rewards.gifts_app, name="gifts")
    app.add_typer(rewards.stripe_app, name="stripe")
    app.command("demo-data")(demo.demo_data)
    app.command("run")(run.run)
    app.command("serve")(serve.serve)
    app.command("worker")(worker.worker)
    app.command("web")(web.web)
    app.command("stages")(profiles.stages)
    app.command("plan")(plan.plan)
    app.command("why")(plan.why)
    app.command("pathways")(pathways.pathways)
    app.command("validate")(validate.validate)
    app.command("schema")(validate.schema)
    app.command("preview")(email.preview)
    app.command("unsubscribe")(email.unsubscribe)
    app.add_typer(actions.app, name="actions")
    app.add_typer(actions.sends_app, name="sends")
    app.add_typer(approvals.app, name="approvals")
    app.command("runs")(actions.runs)
    app.command("impact")(impact.impact)
    app.command("report")(report_command)
    app.command("simulate")(simulate.simulate_command)


def _database_url() -> str | None:
    """The database of this process, if its settings were loaded (to name it in a message)."""
    from bootstrap.app import process_app

    if process_app.cache_info().currsize == 0:
        return None
    return process_app().settings.database_url


def _translate(exc: Exception) -> NudgeflowError | None:
    """The user's error ``exc`` stands for, or ``None`` if it is a bug."""
    if isinstance(exc, NudgeflowError):
        return exc
    if isinstance(exc, DBAPIError):
        from store.diagnosis import describe_database_error

        return describe_database_error(exc, _database_url())
    return None


def report(exc: Exception, debug: bool) -> int:
    """Print ``exc`` as one line per problem on stderr (after its traceback when ``debug``)
    and return the exit status."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    error = _translate(exc)
    if error is None:
        hint = (
            "" if debug else f"; run again with --debug (or {DEBUG_VARIABLE}=1) for the traceback"
        )
        summary = " ".join(str(exc).split()) or "no message"
        err_console.print(
            f"internal error: {type(exc).__name__}: {summary}{hint}", markup=False, soft_wrap=True
        )
        return INTERNAL_ERROR_EXIT
    for line in str(error).splitlines() or [type(error).__name__]:
        err_console.print(f"error: {line}", markup=False, soft_wrap=True)
    return error.exit_code


def main() -> None:
    _register()
    try:
        # Standalone mode: click reports usage errors itself (exit 2) and honours typer.Exit
        # and Ctrl-C; everything else comes here.
        app()
    except Exception as exc:
        sys.exit(report(exc, OPTIONS.debug or debug_requested()))
