"""``nudgeflow db``: the database schema."""

from __future__ import annotations

from bootstrap.app import build_app
from cli.context import console
from cli.help_format import CommandApp
from store.engine import create_store_engine
from store.migrate import head_revision, upgrade

app = CommandApp(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command() -> None:
    """Apply any pending migrations (they are also applied on first use)."""
    settings = build_app().settings
    engine = create_store_engine(settings.database_url)
    applied = upgrade(engine)
    state = "upgraded to" if applied else "already at"
    console.print(f"database {state} revision {head_revision()}")
