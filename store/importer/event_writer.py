"""Writing events: new events inserted in batches, an ``event_id`` already stored (or repeated
earlier in the chunk) skipped and counted unchanged, events of unknown members rejected."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.importer.postgres_stage import EventStage
from store.importer.rejects import ImportResult
from store.importer.statements import JSON_OR_NULL, in_keys, insert_new, is_postgres, keys_param
from store.rows import EventRow, RowError, RowProblem
from store.schema import events, members


class EventWriter:
    """Inserts new events; a known ``event_id`` is skipped (counted unchanged)."""

    COLUMNS = ("event_id", "member_pk", "type", "occurred_at", "amount_minor", "currency")

    def __init__(self, conn: Connection, result: ImportResult) -> None:
        self._conn = conn
        self._result = result
        columns = [*self.COLUMNS, "properties", "import_id"]
        values: dict[str, Any] = {name: sa.bindparam(name) for name in columns}
        values["properties"] = sa.bindparam("properties", type_=JSON_OR_NULL)
        self._statement = insert_new(conn, events).values(values)
        member_pks = sa.select(members.c.member_id, members.c.id)
        self._select_pks = member_pks.where(in_keys(conn, members.c.member_id))
        self._columns = columns
        self._sql: str | None = None
        self._stage: EventStage | None = None
        if is_postgres(conn):
            self._stage = EventStage(conn)  # COPY into a staging table, then one INSERT
        else:
            # The hot path: plain tuples straight to the driver skip SQLAlchemy's per-row
            # parameter processing, which otherwise doubles the cost of a large import.
            compiled = self._statement.compile(dialect=conn.dialect)
            assert compiled.positiontup == columns
            self._sql = str(compiled)
            self._pks_sql = str(self._select_pks.compile(dialect=conn.dialect))

    def sqlite_statements(self) -> tuple[str, str]:
        """The INSERT (parameters in ``COLUMNS`` order, then properties as JSON text and the
        import id) and the member-key SELECT (one JSON array of member ids), for SQLite."""
        assert self._sql is not None
        return self._sql, self._pks_sql

    def write(
        self,
        good: list[tuple[int, EventRow, list[str]]],
        bad: list[tuple[int, RowError, list[str]]],
        warnings: list[RowProblem],
    ) -> None:
        del warnings  # duplicates are skipped quietly: a re-import is full of them
        result = self._result
        if not good:
            return
        import_id = result.import_id
        pks = self._member_pks(list({item[1][1] for item in good}))
        seen: set[str] = set()
        params: list[tuple[Any, ...]] = []
        for line, row, original in good:
            if row[0] in seen:
                result.unchanged += 1  # the same event_id earlier in this chunk: first wins
                continue
            seen.add(row[0])
            pk = pks.get(row[1])
            if pk is None:
                bad.append((line, RowError("member_id", f"unknown member {row[1]!r}"), original))
                continue
            properties: Any = row[6]
            if properties is not None:  # JSON text for both databases' fast paths
                properties = json.dumps(properties)
            params.append((row[0], pk, row[2], row[3], row[4], row[5], properties, import_id))
        if not params:
            return
        conn = self._conn
        if self._stage is not None:
            inserted = self._stage.insert(params)
        else:
            assert self._sql is not None
            inserted = conn.exec_driver_sql(self._sql, params).rowcount
        # ON CONFLICT DO NOTHING skipped the event_ids already stored: those are unchanged.
        result.imported += inserted
        result.unchanged += len(params) - inserted

    def _member_pks(self, member_ids: list[str]) -> dict[str, int]:
        keys = keys_param(self._conn, member_ids)
        if self._sql is None:
            rows = self._conn.execute(self._select_pks, keys).all()
            return {member_id: pk for member_id, pk in rows}
        # SQLite: the driver's plain tuples, without building a SQLAlchemy Row for each one.
        cursor = self._conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        found = cursor.execute(self._pks_sql, (keys["keys"],)).fetchall()
        cursor.close()
        return dict(found)
