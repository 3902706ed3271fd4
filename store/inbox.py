"""The inbox table: requests the HTTP service accepted, stored before they are answered.

``store_request`` is one request's INSERT; ``store_requests`` stores the requests that
arrived together in one (the service's group commit). The worker (``inbound.inbox``) reads
``pending`` rows in batches (``pending_rows``) and, inside the write transaction of their
effects, marks the ones still pending ``done`` (``claim_done``, passing by
rows a second worker has locked on PostgreSQL). A row whose work raised gets an attempt and
the error (``note_failure``) and is ``failed`` after the last attempt; ``retry_failed`` puts
failed rows back to pending for an operator. ``claim_keys`` keeps the keys of items that
leave no keyed row of their own (``inbox_keys``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from store.engine import sqlite_write_turn
from store.importer.statements import in_keys, keys_param
from store.schema import inbox, inbox_keys

Kind = Literal["sendgrid", "stripe", "ingest"]
KINDS: tuple[Kind, ...] = ("sendgrid", "stripe", "ingest")
STATES = ("pending", "done", "failed")
ERROR_LIMIT = 2000  # characters of an error kept on the row


@dataclass(frozen=True)
class InboxRow:
    id: int
    kind: str
    received_at: int
    body: str
    attempts: int


@dataclass(frozen=True)
class InboxStatus:
    """Counts by (kind, state), and when the oldest pending request was received."""

    counts: dict[tuple[str, str], int]
    oldest_pending: int | None  # epoch seconds

    def total(self, state: str) -> int:
        return sum(n for (_, s), n in self.counts.items() if s == state)


def store_request(connection: Connection, kind: Kind, body: str, received_at: int) -> int:
    """Insert one accepted request (pending); its id. The caller commits before answering."""
    key = connection.execute(
        sa.insert(inbox).values(kind=kind, body=body, received_at=received_at)
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def store_requests(connection: Connection, requests: Sequence[tuple[Kind, str, int]]) -> None:
    """Insert several accepted requests (kind, body, received_at) at once: the group commit
    of the service's intake (``web.intake.InboxWriter``)."""
    if requests:
        connection.execute(
            sa.insert(inbox),
            [{"kind": k, "body": body, "received_at": at} for k, body, at in requests],
        )


class InboxAppender:
    """SQLite only: store a batch of requests now or not at all, never waiting for a lock.

    The service's event loop calls it (``web.intake.InboxWriter``): a commit on SQLite's
    write-ahead log takes a few hundred microseconds, less than handing the batch to a
    thread and back. It must never wait, so its own connection gives up at once when
    another writer holds the lock (``busy_timeout=0``; another thread of this process
    holds its write turn, or another process the database's lock) and the caller stores
    the batch the waiting way in a thread. It leaves checkpoints to the other connections
    (``wal_autocheckpoint=0``): a checkpoint writes and syncs the database file."""

    def __init__(self, engine: sa.Engine) -> None:
        if engine.dialect.name != "sqlite":
            raise ValueError("InboxAppender is for SQLite; PostgreSQL commits in a thread")
        self._engine = engine
        self._pooled: Any = None
        self._sql = f"INSERT INTO {inbox.name} (kind, body, received_at) VALUES (?, ?, ?)"

    def _connection(self) -> sqlite3.Connection:
        if self._pooled is None:
            self._pooled = self._engine.raw_connection()
            self._pooled.driver_connection.execute("PRAGMA busy_timeout=0")
            self._pooled.driver_connection.execute("PRAGMA wal_autocheckpoint=0")
        connection = self._pooled.driver_connection
        assert isinstance(connection, sqlite3.Connection)
        return connection

    def try_store(self, requests: Sequence[tuple[Kind, str, int]]) -> bool:
        """Insert and commit ``requests``; False (nothing stored) if that would mean waiting."""
        turn = sqlite_write_turn(self._engine)
        if not turn.acquire(blocking=False):
            return False
        try:
            connection = self._connection()
            try:
                connection.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:  # locked by another process: do not wait here
                return False
            try:
                connection.executemany(self._sql, requests)
                connection.execute("COMMIT")
            except sqlite3.Error as exc:  # as SQLAlchemy would raise it; a fresh connection next
                self.close()
                raise sa.exc.OperationalError(self._sql, None, exc) from exc
            return True
        finally:
            turn.release()

    def close(self) -> None:
        """Drop the connection (its settings are this appender's, not for the pool); a
        transaction it left open is rolled back with it."""
        if self._pooled is not None:
            self._pooled.invalidate()
            self._pooled = None


_COLUMNS = (inbox.c.id, inbox.c.kind, inbox.c.received_at, inbox.c.body, inbox.c.attempts)


def pending_rows(
    connection: Connection,
    limit: int,
    *,
    after: int = 0,
    only: Sequence[int] | None = None,
) -> list[InboxRow]:
    """Up to ``limit`` pending rows with ids above ``after``, oldest first (by the
    ``(state, id)`` index); ``only`` restricts them to these ids."""
    query = sa.select(*_COLUMNS).where(inbox.c.state == "pending", inbox.c.id > after)
    if only is not None:
        query = query.where(inbox.c.id.in_(list(only)))
    rows = connection.execute(query.order_by(inbox.c.id).limit(limit)).all()
    return [InboxRow(*row) for row in rows]


def claim_done(connection: Connection, ids: Sequence[int], at: int) -> set[int]:
    """Mark those of ``ids`` that are still pending ``done`` (an attempt each) and return
    their ids, in the transaction that writes their effects, so a rollback leaves them
    pending. On PostgreSQL one ``UPDATE … RETURNING`` that passes by the rows another worker
    has locked (``FOR UPDATE SKIP LOCKED``). On SQLite the caller's write transaction
    (``BEGIN IMMEDIATE``) holds the write lock, so it is the only writer already: the pending
    ids are read as one JSON array and marked by one ``UPDATE``."""
    if not ids:
        return set()
    if connection.dialect.name == "sqlite":
        # The ids come back as one JSON array: one step of the statement, where RETURNING
        # takes a step (and a hand-over of the GIL) per row.
        found = connection.execute(
            sa.select(sa.func.json_group_array(inbox.c.id)).where(
                in_keys(connection, inbox.c.id), inbox.c.state == "pending"
            ),
            keys_param(connection, list(ids)),
        ).scalar_one()
        pending = json.loads(found)
        marked = connection.execute(
            sa.update(inbox)
            .where(in_keys(connection, inbox.c.id), inbox.c.state == "pending")
            .values(state="done", processed_at=at, attempts=inbox.c.attempts + 1),
            keys_param(connection, pending),
        )
        if marked.rowcount != len(pending):  # another writer between the two: not ours
            raise RuntimeError("claim_done on SQLite needs the caller's write transaction")
        return set(pending)
    still_pending = (
        sa.select(inbox.c.id)
        .where(in_keys(connection, inbox.c.id), inbox.c.state == "pending")
        .with_for_update(skip_locked=True)
    )
    claimed = connection.execute(
        sa.update(inbox)
        .where(inbox.c.id.in_(still_pending.scalar_subquery()))
        .values(state="done", processed_at=at, attempts=inbox.c.attempts + 1)
        .returning(inbox.c.id),
        keys_param(connection, list(ids)),
    )
    return set(claimed.scalars())


def note_failure(
    connection: Connection, row_id: int, error: str, at: int, max_attempts: int
) -> bool:
    """Count a failed attempt of a pending row and keep its error; ``failed`` (True) once it
    has had ``max_attempts``, else it stays pending for a later attempt."""
    attempts = connection.execute(
        sa.select(inbox.c.attempts).where(inbox.c.id == row_id, inbox.c.state == "pending")
    ).scalar()
    if attempts is None:
        return False  # worked meanwhile by someone else
    failed = int(attempts) + 1 >= max_attempts
    connection.execute(
        sa.update(inbox)
        .where(inbox.c.id == row_id)
        .values(
            attempts=attempts + 1,
            last_error=error[:ERROR_LIMIT],
            state="failed" if failed else "pending",
            processed_at=at if failed else None,
        )
    )
    return failed


def retry_failed(connection: Connection, ids: Sequence[int] | None = None) -> int:
    """Put failed rows (all, or those of ``ids``) back to pending with no attempts; how many."""
    statement = sa.update(inbox).where(inbox.c.state == "failed")
    if ids is not None:
        statement = statement.where(inbox.c.id.in_(list(ids)))
    result = connection.execute(statement.values(state="pending", attempts=0, processed_at=None))
    return int(result.rowcount)


def inbox_status(connection: Connection) -> InboxStatus:
    counts = connection.execute(
        sa.select(inbox.c.kind, inbox.c.state, sa.func.count()).group_by(
            inbox.c.kind, inbox.c.state
        )
    ).all()
    oldest = connection.execute(
        sa.select(sa.func.min(inbox.c.received_at)).where(inbox.c.state == "pending")
    ).scalar()
    return InboxStatus(
        {(str(kind), str(state)): int(n) for kind, state, n in counts},
        None if oldest is None else int(oldest),
    )


def failed_rows(connection: Connection, limit: int = 20) -> list[tuple[int, str, int, str]]:
    """(id, kind, attempts, last error) of the most recent failed rows."""
    rows = connection.execute(
        sa.select(inbox.c.id, inbox.c.kind, inbox.c.attempts, inbox.c.last_error)
        .where(inbox.c.state == "failed")
        .order_by(inbox.c.id.desc())
        .limit(limit)
    ).all()
    return [(int(i), str(k), int(a), str(e or "")) for i, k, a, e in rows]


def claim_keys(connection: Connection, keys: Sequence[str], at: int) -> set[str]:
    """Record ``keys`` in ``inbox_keys``; the ones that were new (an item keyed by one of the
    others already took effect, so the caller skips it)."""
    if not keys:
        return set()
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(inbox_keys)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(inbox_keys.c.key)
    )
    rows = [{"key": key, "seen_at": at} for key in dict.fromkeys(keys)]
    return {str(key) for key in connection.execute(statement, rows).scalars()}
