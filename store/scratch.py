"""A scratch copy of the database, for work that must leave the real one untouched
(``nudgeflow simulate``): made on entering ``scratch_copy``, gone on leaving it, also when
the work fails or is interrupted (Ctrl-C).

- **SQLite**: the file is copied with SQLite's online backup API (a consistent snapshot,
  even while a night writes) into a temporary folder, which is removed afterwards. Only
  reads touch the real file.
- **PostgreSQL**: a scratch database on the same server (``nudgeflow_scratch_…``; the role
  needs ``CREATEDB``), migrated to the same schema revision, and every table's rows copied
  into it with ``COPY … TO STDOUT`` / ``COPY … FROM STDIN`` (binary) inside one
  ``REPEATABLE READ`` read-only transaction, so the copy is one consistent snapshot and the
  real database sees nothing but reads. ``CREATE DATABASE … TEMPLATE`` would be quicker but
  needs every other session off the real database (the web service, a running night).
  Sequences are moved past the copied keys and the tables analysed (fresh tables have no
  statistics for the planner). The scratch database is dropped
  (``WITH (FORCE)``) afterwards. A schema named in the URL's ``search_path`` (as the tests'
  databases have) is created in the scratch database under the same name, so the same URL
  with another database name works unchanged.
"""

from __future__ import annotations

import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, MetaData, text
from sqlalchemy.exc import DBAPIError

from nudgeflow.errors import StoreError
from store.diagnosis import database_label, describe_database_error
from store.engine import create_store_engine
from store.migrate import upgrade

SCRATCH_PREFIX = "nudgeflow_scratch_"
_SKIPPED_TABLES = {"alembic_version"}  # written by the scratch's own migration


@contextmanager
def scratch_copy(engine: Engine) -> Iterator[Engine]:
    """An engine on a scratch copy of ``engine``'s database (migrated, as the composition
    root's engine always is), disposed of and deleted on leaving. Raises ``StoreError``
    when no copy can be made (an in-memory SQLite database, a PostgreSQL role that may not
    create one)."""
    if engine.dialect.name == "sqlite":
        with _sqlite_copy(engine) as scratch:
            yield scratch
        return
    if engine.dialect.name == "postgresql":
        with _postgres_copy(engine) as scratch:
            yield scratch
        return
    raise StoreError(f"no scratch copy of a {engine.dialect.name} database")  # pragma: no cover


# --- SQLite ----------------------------------------------------------------------------


@contextmanager
def _sqlite_copy(engine: Engine) -> Iterator[Engine]:
    database = engine.url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise StoreError(
            f"{database_label(engine.url)}: only a database file can be copied for a simulation"
        )
    with tempfile.TemporaryDirectory(prefix="nudgeflow-scratch-") as folder:
        path = Path(folder) / "scratch.db"
        target = sqlite3.connect(path)
        try:
            with engine.connect() as connection:
                source = connection.connection.driver_connection
                assert isinstance(source, sqlite3.Connection)
                source.backup(target)
        finally:
            target.close()
        scratch = create_store_engine(f"sqlite:///{path}")
        try:
            yield scratch
        finally:
            scratch.dispose()


# --- PostgreSQL ------------------------------------------------------------------------


@contextmanager
def _postgres_copy(engine: Engine) -> Iterator[Engine]:
    name = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:16]}"
    with engine.connect() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    _create_database(engine, name)
    scratch: Engine | None = None
    try:
        url = engine.url.set(database=name)
        scratch = create_store_engine(url.render_as_string(hide_password=False))
        if schema != "public":
            with scratch.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        upgrade(scratch)
        _copy_rows(engine, scratch)
        yield scratch
    finally:
        if scratch is not None:
            scratch.dispose()
        _drop_database(engine, name)


def _create_database(engine: Engine, name: str) -> None:
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except DBAPIError as exc:
        reason = " ".join(str(exc.orig).split()) or type(exc.orig).__name__
        problem = describe_database_error(exc, engine.url)
        detail = str(problem) if problem is not None else reason
        raise StoreError(
            f"cannot create a scratch database to simulate in ({detail}); the database role "
            "needs the CREATEDB privilege (ALTER ROLE … CREATEDB)"
        ) from None


def _drop_database(engine: Engine, name: str) -> None:
    # Runs on the way out of an error or Ctrl-C too: FORCE ends any session left on it.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _copy_rows(source: Engine, scratch: Engine) -> None:
    """Every row of every table of the scratch's schema, from ``source``, parents first."""
    tables = MetaData()
    tables.reflect(scratch)
    snapshot = source.connect().execution_options(
        isolation_level="REPEATABLE READ", postgresql_readonly=True
    )
    with snapshot as reading, scratch.connect() as writing:
        src = reading.connection.driver_connection
        dst = writing.connection.driver_connection
        assert src is not None and dst is not None
        for table in tables.sorted_tables:
            if table.name in _SKIPPED_TABLES:
                continue
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            copy = f'COPY "{table.name}" ({columns})'
            with (
                src.cursor() as read,
                dst.cursor() as write,
                read.copy(f"{copy} TO STDOUT (FORMAT BINARY)") as rows,
                write.copy(f"{copy} FROM STDIN (FORMAT BINARY)") as into,
            ):
                for block in rows:
                    into.write(block)
        _move_sequences(writing)
        writing.commit()
        reading.rollback()
    # Fresh tables have no statistics: without them the planner guesses, and the nights'
    # set-based queries (the refresh's aggregate, fatigue's windows) run many times slower.
    with scratch.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("ANALYZE"))


def _move_sequences(connection: Connection) -> None:
    """Every serial or identity column's sequence set past the largest copied key."""
    found = connection.execute(
        text(
            "SELECT c.relname, a.attname, pg_get_serial_sequence(quote_ident(c.relname), a.attname)"
            " FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
            " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'"
            " AND a.attnum > 0 AND NOT a.attisdropped"
            " AND pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL"
        )
    ).all()
    for table, column, sequence in found:
        connection.execute(
            text(
                f'SELECT setval(:sequence, COALESCE(MAX("{column}"), 0) + 1, false) FROM "{table}"'
            ),
            {"sequence": sequence},
        )
