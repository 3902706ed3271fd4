"""Database problems a user can cause become a ``StoreError`` that names the database and
says what to do (``store.diagnosis``, ``store.engine``, ``store.migrate``), on SQLite and
PostgreSQL; an error that is not about the database itself (a bug) is left as it is."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from nudgeflow.errors import DatabaseLocked, StoreError
from store.diagnosis import describe_database_error
from store.engine import create_store_engine
from store.migrate import head_revision, upgrade

INSERT = (
    "INSERT INTO imports (id, kind, source, started_at, imported, updated, unchanged, rejected)"
    " VALUES (1, 'members', 'm.csv', '2026-11-21 02:00:00', 0, 0, 0, 0)"
)


def _failure(engine: sa.Engine, statement: str) -> DBAPIError:
    with pytest.raises(DBAPIError) as caught, engine.begin() as connection:
        connection.exec_driver_sql(statement)
    return caught.value


def test_a_database_migrated_by_a_newer_nudgeflow_is_refused(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0999_future'"))
    with pytest.raises(StoreError) as caught:
        upgrade(engine)
    message = str(caught.value)
    assert "was migrated by a newer nudgeflow (schema revision 0999_future; this version " in (
        message
    )
    assert f"knows up to {head_revision()}): upgrade nudgeflow" in message


def test_a_duplicate_key_is_a_bug_not_a_database_problem(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(INSERT)
    assert describe_database_error(_failure(engine, INSERT), engine.url) is None


@pytest.mark.postgres
def test_an_unreachable_postgresql_names_the_server(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only")
    engine = create_store_engine("postgresql+psycopg://postgres:secret@127.0.0.1:1/nudgeflow")
    with pytest.raises(StoreError) as caught:
        upgrade(engine)
    message = str(caught.value)
    assert message.startswith("cannot use the PostgreSQL database nudgeflow on 127.0.0.1:1 (")
    assert "Connection refused" in message and "NUDGEFLOW_DATABASE_URL" in message
    assert "secret" not in message and "\n" not in message


@pytest.mark.postgres
def test_a_read_only_postgresql_transaction(engine: sa.Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    with engine.begin() as connection:
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        with pytest.raises(DBAPIError) as caught:
            connection.exec_driver_sql(INSERT)
        connection.rollback()
    problem = describe_database_error(caught.value, engine.url)
    assert problem is not None and " is read-only (" in str(problem)


# --- SQLite ------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    path = tmp_path / "nudgeflow.db"
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 200)
    with pytest.raises(StoreError) as caught:
        upgrade(create_store_engine(f"sqlite:///{path}"))
    assert str(caught.value).startswith(f"the SQLite file {path} is not a SQLite database")


def test_a_read_only_database(sqlite_file: Path) -> None:
    engine = create_store_engine(f"sqlite:///file:{sqlite_file}?mode=ro&uri=true")
    error = _failure(engine, INSERT)
    problem = describe_database_error(error, engine.url)
    assert problem is not None and not isinstance(problem, DatabaseLocked)
    assert str(problem).startswith(f"the SQLite file {sqlite_file} is read-only (")
    engine.dispose()


@pytest.fixture
def write_lock(sqlite_file: Path) -> Iterator[Path]:
    """Another connection holding the database's write lock."""
    holder = sqlite3.connect(sqlite_file, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield sqlite_file
    holder.execute("ROLLBACK")
    holder.close()


def test_a_lock_held_past_the_timeout_is_database_locked(write_lock: Path) -> None:
    engine = create_store_engine(f"sqlite:///{write_lock}?timeout=0.2")
    error = _failure(engine, INSERT)
    problem = describe_database_error(error, engine.url)
    assert isinstance(problem, DatabaseLocked) and problem.exit_code == 3
    assert str(problem).startswith(
        f"the SQLite file {write_lock} is locked: another process kept its write lock for "
        "more than 0.2 s"
    )
    engine.dispose()


def test_a_migration_waiting_on_a_lock_is_database_locked(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(DatabaseLocked):
            upgrade(create_store_engine(f"sqlite:///{path}?timeout=0.2"))
    finally:
        holder.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://u:pw@host:port/db", "NUDGEFLOW_DATABASE_URL: the port is not"),
        ("mysql://u:pw@host/db", "NUDGEFLOW_DATABASE_URL: no database driver for 'mysql'"),
        ("sqlite:///x.db?timeout=soon", "NUDGEFLOW_DATABASE_URL: timeout='soon' is not a number"),
    ],
)
def test_urls_that_cannot_be_used(url: str, message: str) -> None:
    with pytest.raises(StoreError) as caught:
        create_store_engine(url)
    assert str(caught.value).startswith(message)
    assert "pw" not in str(caught.value)


def test_a_bare_postgresql_url_means_psycopg() -> None:
    engine = create_store_engine("postgresql://u:pw@host/db")
    try:
        assert engine.url.drivername == "postgresql+psycopg"
    finally:
        engine.dispose()
