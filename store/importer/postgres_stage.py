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

from psycopg.types.json import Jsonb
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

    def insert(self, params: list[Any]) -> int:
        """Insert rows given as ``(event_id, member_pk, type, occurred_at, amount_minor,
        currency, properties as JSON text or None, import_id)``; return how many were new."""
        conn = self._conn
        if not conn.in_transaction():
            conn.begin()  # so that the connection's commit ends the transaction COPY is in
        # A chunk need not wait for its WAL to reach the disk: a crash loses at most the last
        # chunks' commits (never half a chunk), and importing the file again adds them.
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        # In every chunk's transaction: behind a pooler in transaction mode, the next
        # transaction may run on another server session, without the temporary table.
        conn.exec_driver_sql(_CREATE_STAGE)
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


# --- members ------------------------------------------------------------------------------

_MEMBER_STAGE = "pg_temp.nudgeflow_import_members"
# (``op``: i insert, u update, t touch), then the columns a write sets, as members has them.
_MEMBER_CONTENT = (
    "email, first_name, last_name, joined_at, birth_year, birth_month, birth_day, country, "
    "timezone, stripe_customer_id, email_opt_in, attributes"
)
_MEMBER_STAGED = (
    f"op, pk, member_id, row_hash, updated_at, import_id, source_line, {_MEMBER_CONTENT}"
)
_CREATE_MEMBER_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_MEMBER_STAGE.partition('.')[2]} "
    "ON COMMIT DELETE ROWS AS SELECT ''::text AS op, id AS pk, member_id, row_hash, "
    f"updated_at, import_id, source_line, {_MEMBER_CONTENT} FROM members WITH NO DATA"
)
_COPY_MEMBERS = f"COPY {_MEMBER_STAGE} ({_MEMBER_STAGED}) FROM STDIN"
_INSERT_MEMBERS = (
    f"INSERT INTO members (member_id, row_hash, created_at, updated_at, import_id, "
    f"source_line, {_MEMBER_CONTENT}) "
    f"SELECT member_id, row_hash, updated_at, updated_at, import_id, source_line, "
    f"{_MEMBER_CONTENT} FROM {_MEMBER_STAGE} WHERE op = 'i' ORDER BY source_line "
    "ON CONFLICT DO NOTHING"
)
_CONTENT_NAMES = tuple(_MEMBER_CONTENT.split(", "))
_UPDATED = ("row_hash", "updated_at", "import_id", "source_line", *_CONTENT_NAMES)
_UPDATE_MEMBERS = (
    "UPDATE members AS m SET "
    + ", ".join(f"{name} = s.{name}" for name in _UPDATED)
    + f" FROM {_MEMBER_STAGE} AS s WHERE s.op = 'u' AND m.id = s.pk"
)
_TOUCH_MEMBERS = (
    "UPDATE members AS m SET import_id = s.import_id, source_line = s.source_line "
    f"FROM {_MEMBER_STAGE} AS s WHERE s.op = 't' AND m.id = s.pk"
)


class MemberStage:
    """A chunk's member writes by COPY: the new members, the changed ones and the ones only
    seen again (their import and line) go into one staging table, then one INSERT and two
    UPDATEs move them. Parameters are the ``MemberWriter``'s (``b_``-prefixed names)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def write(
        self,
        inserts: list[dict[str, Any]],
        updates: list[dict[str, Any]],
        touches: list[dict[str, Any]],
    ) -> None:
        conn = self._conn
        if not conn.in_transaction():
            conn.begin()
        conn.exec_driver_sql(_CREATE_MEMBER_STAGE)  # each time, as EventStage does
        cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with cursor.copy(_COPY_MEMBERS) as copy:
                for op, rows in (("i", inserts), ("u", updates)):
                    for p in rows:
                        content = [p[f"b_{name}"] for name in _CONTENT_NAMES]
                        if content[-1] is not None:
                            content[-1] = Jsonb(content[-1])
                        copy.write_row(
                            (
                                op,
                                p.get("b_pk"),
                                p.get("b_member_id"),
                                p["b_row_hash"],
                                p["b_now"],
                                p["b_import_id"],
                                p["b_line"],
                                *content,
                            )
                        )
                blank = (None,) * len(_CONTENT_NAMES)
                for p in touches:
                    pk, import_id, line = p["b_pk"], p["b_import_id"], p["b_line"]
                    copy.write_row(("t", pk, None, None, None, import_id, line, *blank))
            if inserts:
                cursor.execute(_INSERT_MEMBERS)
            if updates:
                cursor.execute(_UPDATE_MEMBERS)
            if touches:
                cursor.execute(_TOUCH_MEMBERS)
        finally:
            cursor.close()


_TAG_STAGE = "pg_temp.nudgeflow_import_tags"
_CREATE_TAG_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_TAG_STAGE.partition('.')[2]} ON COMMIT DELETE ROWS "
    "AS SELECT member_pk, tag FROM member_tags WITH NO DATA"
)
_CLEAR_TAGS = "DELETE FROM member_tags WHERE source = 'import' AND member_pk = ANY(%s)"
_COPY_TAGS = f"COPY {_TAG_STAGE} (member_pk, tag) FROM STDIN"
_INSERT_TAGS = (
    f"INSERT INTO member_tags (member_pk, tag, source) SELECT member_pk, tag, 'import' "
    f"FROM {_TAG_STAGE} ON CONFLICT DO NOTHING"
)


class TagStage:
    """A chunk's import tags by COPY: the members' old import tags deleted in one statement,
    the new ones copied in and inserted in one."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def replace(self, cleared: list[int], tags: list[tuple[int, str]]) -> None:
        conn = self._conn
        if not conn.in_transaction():
            conn.begin()
        conn.exec_driver_sql(_CREATE_TAG_STAGE)  # each time, as EventStage does
        cursor: Any = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if cleared:
                cursor.execute(_CLEAR_TAGS, (cleared,))
            if tags:
                with cursor.copy(_COPY_TAGS) as copy:
                    for row in tags:
                        copy.write_row(row)
                cursor.execute(_INSERT_TAGS)
        finally:
            cursor.close()
