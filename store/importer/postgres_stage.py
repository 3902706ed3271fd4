"""Events into PostgreSQL by COPY: each chunk of checked rows is copied into a temporary
staging table (``cursor.copy()``, psycopg's COPY protocol) and moved into ``events`` by one
``INSERT … SELECT … ON CONFLICT (event_id) DO NOTHING``.

Rows are checked in Python before they are copied, exactly as on SQLite (``store.rows``,
``store.importer.checking``): COPY only carries values already clean, so the rejects, their
lines and the counts are the same on both databases. The staging table is ``TEMP`` (no WAL,
seen by this session only) and ``ON COMMIT DELETE ROWS``: each chunk's transaction starts
with it empty. ``ON CONFLICT`` keeps a re-import (or a concurrent one) from adding an event
twice; the rows it skipped are counted unchanged. Each chunk commits without waiting for
its WAL to be flushed (``synchronous_commit = off`` for that transaction only).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

STAGE = "pg_temp.nudgeflow_import_events"
# In the order of the writers' parameter tuples: EventWriter.COLUMNS, properties, import_id.
_COLUMNS = "event_id, member_pk, type, occurred_at, amount_minor, currency, properties, import_id"
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE.partition('.')[2]} ("
    "event_id text, member_pk integer, type text, occurred_at bigint, amount_minor bigint, "
    "currency text, properties jsonb, import_id integer) ON COMMIT DELETE ROWS"
)
_COPY = f"COPY {STAGE} ({_COLUMNS}) FROM STDIN"
_MOVE = (
    f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM {STAGE} "
    "ON CONFLICT (event_id) DO NOTHING"
)
MEMBER_PKS = "SELECT member_id, id FROM members WHERE member_id = ANY(%s)"


class EventStage:
    """The staging table of one connection: ``insert`` copies rows in, moves the new ones
    into ``events`` and returns how many were new. Call it inside the chunk's transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._ready = False

    def insert(self, params: list[Any]) -> int:
        """Insert rows given as ``(event_id, member_pk, type, occurred_at, amount_minor,
        currency, properties as JSON text or None, import_id)``; return how many were new."""
        conn = self._conn
        if not conn.in_transaction():
            conn.begin()  # so that the connection's commit ends the transaction COPY is in
        # A chunk need not wait for its WAL to reach the disk: a crash loses at most the last
        # chunks' commits (never half a chunk), and importing the file again adds them.
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        if not self._ready:  # the table outlives the transaction, for the session
            conn.exec_driver_sql(_CREATE_STAGE)
            self._ready = True
        cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(_COPY) as copy:
                write = copy.write_row
                for row in params:
                    write(row)
            cursor.execute(_MOVE)
            return int(cursor.rowcount)
        finally:
            cursor.close()
