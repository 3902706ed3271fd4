"""CSV events into PostgreSQL: the fused loop of ``store.importer.sqlite_events`` with each
chunk written by COPY (``store.importer.postgres_stage``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from store.importer.postgres_stage import MEMBER_PKS, EventStage
from store.importer.rejects import ImportResult, Rejects
from store.importer.sqlite_events import CsvEventsLoop


class PostgresCsvEvents(CsvEventsLoop):
    """CSV events into PostgreSQL: each chunk by COPY into the staging table, then one
    set-based insert; a large file is read and checked in the reader process, which
    preloads member keys over a connection of its own."""

    def __init__(self, conn: Connection, result: ImportResult, rejects: Rejects) -> None:
        super().__init__(conn, result, rejects)
        self._stage = EventStage(conn)

    def _insert(self, params: list[Any]) -> int:
        return self._stage.insert(params)

    def _members_source(self) -> str:
        url = self._conn.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def _member_pks(self, member_ids: list[str]) -> dict[str, int]:
        cursor = self._cursor()
        try:
            return dict(cursor.execute(MEMBER_PKS, (member_ids,)).fetchall())
        finally:
            cursor.close()
