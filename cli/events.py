"""``nudgeflow events``: import what members did (purchases, posts, email activity)."""

from __future__ import annotations

from cli.help_format import CommandApp
from cli.members import FileArgument, FormatOption, run_import

app = CommandApp(help="Events: what members did.", no_args_is_help=True)


@app.command("import")
def import_command(file: FileArgument, file_format: FormatOption = None) -> None:
    """Add events from a file; an event_id already stored is skipped (safe to repeat)."""
    run_import("events", file, file_format)
