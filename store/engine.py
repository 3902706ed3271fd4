"""Engines: SQLite with WAL and foreign keys on, or PostgreSQL through psycopg."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from nudgeflow.errors import StoreError
from store.diagnosis import SETTING, busy_timeout_seconds

# How long to wait for a PostgreSQL server that does not answer (a wrong host or a firewall
# that drops packets), unless the URL says ?connect_timeout=: long enough for a busy server.
CONNECT_TIMEOUT_SECONDS = 10
URL_FORMS = "sqlite:///path/to/file.db or postgresql+psycopg://user:password@host:5432/database"


def _on_sqlite_connect(busy_timeout_ms: int, dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # First, so that the statements below wait for another process's lock as long as any.
    cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Sorts of millions of rows (the refresh's GROUP BY and NTILEs) spill to temporary files,
    # which the OS caches anyway: in memory they would push a 1 M-member refresh past 1 GiB.
    cursor.execute("PRAGMA temp_store=FILE")
    cursor.execute("PRAGMA cache_size=-131072")  # 128 MiB page cache
    cursor.close()


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"{SETTING}: not a database URL; expected {URL_FORMS}") from None
    except ValueError:  # the only thing make_url converts is the port
        raise StoreError(f"{SETTING}: the port is not a number; expected {URL_FORMS}") from None
    # A bare postgresql:// means psycopg 3, the driver nudgeflow installs, whatever the
    # SQLAlchemy (2.0 would ask for psycopg2, 2.1 asks for psycopg).
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _create(parsed: URL, **kwargs: Any) -> Engine:
    try:
        return create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        # e.g. postgresql:// asks for psycopg2, which nudgeflow does not install.
        raise StoreError(
            f"{SETTING}: no database driver for {parsed.drivername!r} ({exc}); expected {URL_FORMS}"
        ) from None


def _create_folder(database: str) -> None:
    folder = Path(database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"{SETTING}: cannot create the folder {folder} for the SQLite database "
            f"({exc.strerror or exc}); create it, or choose another path"
        ) from None


def create_store_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url``; for a SQLite file, create its folder first. A URL that
    cannot be used raises ``StoreError`` naming ``NUDGEFLOW_DATABASE_URL``.

    SQLite waits up to 30 s for another process's write lock (``?timeout=SECONDS`` in the
    URL changes it), then fails with ``DatabaseLocked``; PostgreSQL gives up connecting
    after 10 s (``?connect_timeout=SECONDS``)."""
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            _create_folder(database)
        busy_ms = round(busy_timeout_seconds(parsed) * 1000)
        engine = _create(parsed, **kwargs)
        event.listen(engine, "connect", partial(_on_sqlite_connect, busy_ms))
        return engine
    connect_args = dict(kwargs.pop("connect_args", {}))
    if "connect_timeout" not in parsed.query:
        connect_args.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
    return _create(parsed, pool_pre_ping=True, connect_args=connect_args, **kwargs)


_WRITE_TURNS: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
_TURNS_LOCK = threading.Lock()


def write_turn(engine: Engine) -> AbstractContextManager[Any]:
    """Held around a write transaction by threads of one process that write concurrently
    (dispatch). SQLite has one writer at a time and its busy handler waits by sleeping in
    steps of up to 100 ms: threads that take turns here never meet it, and only other
    processes do. PostgreSQL needs no such turns. Re-entrant."""
    if engine.dialect.name != "sqlite":
        return nullcontext()
    return sqlite_write_turn(engine)


def sqlite_write_turn(engine: Engine) -> threading.RLock:
    """The lock behind ``write_turn`` of a SQLite engine, for a caller that must not wait
    for it (``acquire(blocking=False)``)."""
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
