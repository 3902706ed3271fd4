"""What a database error means to the person running nudgeflow, in one line.

SQLAlchemy wraps whatever the driver raised. Most of that is a bug (a statement that does not
fit the schema) and stays what it is. Some of it is about the database itself, and the user
can fix it: the server cannot be reached, the SQLite file is locked by another process,
read-only, not a database at all, or its disk is full. ``describe_database_error`` turns
those into a ``StoreError`` (``DatabaseLocked`` for a lock) that names the database and says
what to do, and returns ``None`` for everything else. ``store.migrate`` uses it on a
process's first connection; the CLI uses it for the same errors arising later, on any
statement.

SQLite says what went wrong in its result code (``sqlite_errorname``, e.g.
``SQLITE_READONLY_DBMOVED``); PostgreSQL in the SQLSTATE, and psycopg raises
``OperationalError`` for everything between us and the server (refused, unknown host,
unknown database, bad password, a server shutting down).
"""

from __future__ import annotations

import contextlib
import sqlite3

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

from nudgeflow.errors import DatabaseLocked, StoreError

SETTING = "NUDGEFLOW_DATABASE_URL"
# sqlite3's own default is 5 s; store.engine waits 30 s unless the URL says ?timeout=.
DEFAULT_BUSY_TIMEOUT_SECONDS = 30.0

# SQLite result codes (their primary part) and what to say about them; "{db}" is the file.
_SQLITE_ADVICE = {
    "SQLITE_READONLY": (
        "{db} is read-only ({reason}): make the file and its folder writable by this user, "
        f"or point {SETTING} at a writable copy"
    ),
    "SQLITE_CANTOPEN": (
        "cannot open or create {db} ({reason}): check that its folder exists and that the "
        f"file and the folder are readable and writable by this user ({SETTING})"
    ),
    "SQLITE_PERM": (
        "{db} may not be opened ({reason}): check the permissions of the file and its folder"
    ),
    "SQLITE_NOTADB": (
        f"{{db}} is not a SQLite database ({{reason}}): check {SETTING}, or restore the file "
        "from a backup"
    ),
    "SQLITE_CORRUPT": (
        "{db} is damaged ({reason}): restore it from a backup (`sqlite3 FILE .recover` may "
        "save what is left)"
    ),
    "SQLITE_FULL": "{db} cannot grow ({reason}): free some disk space, then run again",
    "SQLITE_IOERR": "{db} could not be read or written ({reason}): check the disk",
}

# PostgreSQL SQLSTATEs the user can do something about (the rest of OperationalError is
# the connection, said below).
_POSTGRES_ADVICE = {
    "42501": "the database user may not do this ({reason}): grant it the privileges it needs",
    "25006": "{db} is read-only ({reason}): point " + SETTING + " at the primary server",
}


def database_label(url: str | URL | None) -> str:
    """``the SQLite file PATH`` or ``the PostgreSQL database NAME on HOST:PORT``."""
    if url is None:
        return "the database"
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):
        return "the database"
    if parsed.get_backend_name() == "sqlite":
        name = parsed.database or ":memory:"
        return f"the SQLite file {name.removeprefix('file:')}"
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    return f"the PostgreSQL database {parsed.database or '(default)'} on {where}"


def busy_timeout_seconds(url: URL) -> float:
    """How long SQLite waits for another process's write lock: ``?timeout=`` in the URL
    (seconds, as the sqlite3 driver reads it), else 30 s."""
    text = url.query.get("timeout")
    if isinstance(text, tuple):
        text = text[-1]
    if text is None:
        return DEFAULT_BUSY_TIMEOUT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        raise StoreError(
            f"{SETTING}: timeout={text!r} is not a number of seconds (e.g. ?timeout=60)"
        ) from None
    if seconds < 0:
        raise StoreError(f"{SETTING}: timeout={text!r} must not be negative")
    return seconds


def _reason(error: BaseException | None) -> str:
    """The driver's message on one line: psycopg's run over several, with a hint after a tab."""
    lines = [" ".join(line.split()) for line in str(error).splitlines()]
    return next((line for line in lines if line), type(error).__name__ if error else "unknown")


def _locked(db: str, url: str | URL | None) -> DatabaseLocked:
    waited = DEFAULT_BUSY_TIMEOUT_SECONDS
    if url is not None:
        with contextlib.suppress(ArgumentError, ValueError, StoreError):
            waited = busy_timeout_seconds(make_url(url) if isinstance(url, str) else url)
    return DatabaseLocked(
        f"{db} is locked: another process kept its write lock for more than {waited:g} s "
        f"(another nudgeflow command, or a tool with the file open); try again once it has "
        f"finished, or wait longer with ?timeout=SECONDS at the end of {SETTING}"
    )


def _sqlite_problem(error: sqlite3.Error, db: str, url: str | URL | None) -> StoreError | None:
    name = getattr(error, "sqlite_errorname", "") or ""
    reason = _reason(error)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in reason:
        return _locked(db, url)
    for code, advice in _SQLITE_ADVICE.items():
        if name == code or name.startswith(code + "_"):
            return StoreError(advice.format(db=db, reason=reason))
    return None


def _postgres_problem(exc: DBAPIError, db: str) -> StoreError | None:
    reason = _reason(exc.orig)
    state = getattr(exc.orig, "sqlstate", None)
    if state == "55P03":  # lock_not_available: a lock_timeout ran out
        return DatabaseLocked(f"{db} is locked by another session ({reason}); try again later")
    if state in _POSTGRES_ADVICE:
        return StoreError(_POSTGRES_ADVICE[state].format(db=db, reason=reason))
    if isinstance(exc, OperationalError):
        return StoreError(
            f"cannot use {db} ({reason}): check {SETTING} (host, port, database, user, "
            "password) and that the server is running"
        )
    return None


def describe_database_error(exc: DBAPIError, url: str | URL | None = None) -> StoreError | None:
    """A ``StoreError`` saying what is wrong with the database and what to do, or ``None``
    when ``exc`` is not about the database itself (then it is a bug: let it be seen)."""
    db = database_label(url)
    if isinstance(exc.orig, sqlite3.Error):
        return _sqlite_problem(exc.orig, db, url)
    if type(exc.orig).__module__.startswith("psycopg"):
        return _postgres_problem(exc, db)
    return None
