"""Apply Alembic migrations from code: on first use and by ``nudgeflow db upgrade``.

A database that cannot be opened, or was migrated by a newer nudgeflow (a revision this code
does not know), raises ``StoreError`` before anything is written.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from nudgeflow.errors import StoreError
from store.diagnosis import SETTING, database_label, describe_database_error

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def _scripts() -> ScriptDirectory:
    return ScriptDirectory(str(MIGRATIONS))


def head_revision() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def _store_error(exc: DBAPIError, engine: Engine) -> StoreError:
    problem = describe_database_error(exc, engine.url)
    if problem is not None:
        return problem
    reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
    return StoreError(f"cannot use {database_label(engine.url)} ({reason}); check {SETTING}")


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    except DBAPIError as exc:
        raise _store_error(exc, engine) from None


def check_revision(current: str | None, engine: Engine) -> None:
    """Refuse a database at a revision this code does not know: a newer nudgeflow migrated
    it, and this one would misread (or damage) what it cannot see."""
    if current is None or current in known_revisions():
        return
    raise StoreError(
        f"{database_label(engine.url)} was migrated by a newer nudgeflow (schema revision "
        f"{current}; this version knows up to {head_revision()}): upgrade nudgeflow, or point "
        f"{SETTING} at another database"
    )


def upgrade(engine: Engine) -> bool:
    """Bring the schema to the newest revision; return whether anything was applied."""
    current = current_revision(engine)
    if current == head_revision():
        return False
    check_revision(current, engine)
    try:
        command.upgrade(_config(engine), "head")
    except DBAPIError as exc:
        problem = describe_database_error(exc, engine.url)
        if problem is None:
            raise  # a migration that does not fit the database: a bug
        raise problem from None
    return True
