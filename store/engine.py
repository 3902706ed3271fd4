"""Engines: SQLite with WAL and foreign keys on, or PostgreSQL through psycopg."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from nudgeflow.errors import StoreError


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Sorts of millions of rows (the refresh's GROUP BY and NTILEs) spill to temporary files,
    # which the OS caches anyway: in memory they would push a 1 M-member refresh past 1 GiB.
    cursor.execute("PRAGMA temp_store=FILE")
    cursor.execute("PRAGMA cache_size=-131072")  # 128 MiB page cache
    cursor.close()


def create_store_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``; for a SQLite file, create its folder first."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"NUDGEFLOW_DATABASE_URL: cannot parse {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _on_sqlite_connect)
        return engine
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


_WRITE_TURNS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_TURNS_LOCK = threading.Lock()


def write_turn(engine: Engine) -> AbstractContextManager[Any]:
    """Held around a write transaction by threads of one process that write concurrently
    (dispatch). SQLite has one writer at a time and its busy handler waits by sleeping in
    steps of up to 100 ms: threads that take turns here never meet it, and only other
    processes do. PostgreSQL needs no such turns. Re-entrant."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    with _TURNS_LOCK:
        turn = _WRITE_TURNS.get(engine)
        if turn is None:
            turn = _WRITE_TURNS[engine] = threading.RLock()
    return turn


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """``engine.begin()`` in this process's write turn (see ``write_turn``)."""
    with write_turn(engine), engine.begin() as connection:
        yield connection


@contextmanager
def immediate_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction that holds the write lock from its first statement: commit on
    success, roll back on any exception.

    SQLite: the ``sqlite3`` driver would open a *deferred* transaction on the first write,
    after the transaction's reads; two processes could then both read the same state and
    one would fail on upgrade. So the driver's own transaction handling is switched off for
    this connection (AUTOCOMMIT isolation) and we issue ``BEGIN IMMEDIATE``/``COMMIT``
    ourselves (``busy_timeout`` makes others wait). PostgreSQL: an ordinary transaction;
    callers take the row or advisory locks they need.
    """
    with engine.connect() as connection:
        if connection.dialect.name != "sqlite":
            with connection.begin():
                yield connection
            return
        connection.execution_options(isolation_level="AUTOCOMMIT")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
