"""The fast path for CSV events: one loop reads, checks, keys and inserts each row, with the
file read in the reader process when it is large. ``CsvEventsLoop`` is that loop;
``SqliteCsvEvents`` inserts with ``executemany``, ``store.importer.postgres_events`` by COPY."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import IO, Any

from sqlalchemy.engine import Connection

from store.importer.checking import Bad, Chunk, CsvEventChunks, Miss, member_keys
from store.importer.csv_records import CsvRecords
from store.importer.event_writer import EventWriter
from store.importer.reader_process import parsed_elsewhere, should_read_elsewhere
from store.importer.reading import Progress
from store.importer.rejects import ImportResult, Rejects, note_bad_rows
from store.rows import RowError

_IMPORT_CHECKPOINT = 20_000  # WAL pages (4 KiB) between checkpoints during an events import


class CsvEventsLoop(ABC):
    """Events from a CSV file in one loop: read, check, key and insert each row.

    The general path builds a dict, a parsed row and a writer's tuple for each row and hands
    them along in lists; at ten million rows that glue cost more than the inserts. Here a row
    goes from the CSV reader's list straight to the tuple the database takes, and member
    keys come from a dict loaded once (when the file is large next to the members table).
    A large file is read and checked in a second process while this one inserts. Counting,
    first-wins within a chunk, rejects and their order are the general path's.

    A database's subclass says how a chunk's rows are inserted (``_insert``, returning how
    many were new), how member keys are looked up (``_member_pks``) and where the reader
    process finds the members (``_members_source``).
    """

    def __init__(self, conn: Connection, result: ImportResult, rejects: Rejects) -> None:
        self._conn = conn
        self._result = result
        self._rejects = rejects

    def _cursor(self) -> Any:
        return self._conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    @abstractmethod
    def _insert(self, params: list[Any]) -> int: ...

    @abstractmethod
    def _member_pks(self, member_ids: list[str]) -> dict[str, int]: ...

    @abstractmethod
    def _members_source(self) -> str:
        """What the reader process opens to preload member keys ("" if it cannot)."""

    def _importing(self) -> AbstractContextManager[None]:
        """Settings that hold while the import runs."""
        return nullcontext()

    def run(
        self,
        records: CsvRecords,
        columns: list[str],
        chunk_size: int,
        raw: IO[bytes],
        progress: Progress | None,
    ) -> None:
        result = self._result
        file_size = result.path.stat().st_size
        source = self._members_source()
        with (
            (
                parsed_elsewhere(result.path, source, result.import_id, chunk_size)
                if should_read_elsewhere(file_size, source)
                else _parsed_here(
                    records, columns, self._preload(file_size), result, chunk_size, raw
                )
            ) as chunks,
            self._importing(),
        ):
            for _count, params, bad, misses, unchanged, offset in chunks:
                if misses:
                    params = self._resolve(params, misses, bad)
                if params:
                    inserted = self._insert(params)
                    # ON CONFLICT DO NOTHING skipped the event_ids already stored: unchanged.
                    result.imported += inserted
                    unchanged += len(params) - inserted
                result.unchanged += unchanged
                note_bad_rows(bad, [], self._rejects, result)
                self._conn.commit()  # one short transaction per chunk: other writers go on
                if progress is not None:
                    progress(offset)

    def _preload(self, file_size: int) -> dict[str, int]:
        cursor = self._cursor()
        try:
            return member_keys(cursor, file_size)
        finally:
            cursor.close()

    def _resolve(self, params: list[Any], misses: list[Miss], bad: list[Bad]) -> list[Any]:
        """Fill in the member keys not preloaded; reject the rows of unknown members."""
        found = self._member_pks(list({miss[3] for miss in misses}))
        unknown = False
        for index, line, values, member_id in misses:
            pk = found.get(member_id)
            if pk is None:
                bad.append((line, RowError("member_id", f"unknown member {member_id!r}"), values))
                params[index] = None
                unknown = True
            else:
                row = params[index]
                params[index] = (row[0], pk, *row[2:])
        return [row for row in params if row is not None] if unknown else params


class SqliteCsvEvents(CsvEventsLoop):
    """CSV events into SQLite: ``executemany`` of each chunk, fewer WAL checkpoints."""

    def __init__(self, conn: Connection, result: ImportResult, rejects: Rejects) -> None:
        super().__init__(conn, result, rejects)
        self._insert_sql, self._pks_sql = EventWriter(conn, result).sqlite_statements()

    def _insert(self, params: list[Any]) -> int:
        return int(self._conn.exec_driver_sql(self._insert_sql, params).rowcount)

    def _members_source(self) -> str:
        return self._conn.engine.url.database or ""

    @contextmanager
    def _importing(self) -> Iterator[None]:
        """Let the WAL grow to ~80 MB between checkpoints while importing, then as before.

        Each chunk's transaction dirties pages all over the ``(member_pk, occurred_at)``
        index; checkpointing after every chunk (the 4 MB default) copies the same pages into
        the database file again and again. Commits stay per chunk.
        """
        cursor = self._cursor()
        try:
            (before,) = cursor.execute("PRAGMA wal_autocheckpoint").fetchone()
            cursor.execute(f"PRAGMA wal_autocheckpoint={max(int(before), _IMPORT_CHECKPOINT)}")
            yield
        finally:
            cursor.execute(f"PRAGMA wal_autocheckpoint={int(before)}")
            cursor.close()

    def _member_pks(self, member_ids: list[str]) -> dict[str, int]:
        cursor = self._cursor()
        try:
            return dict(cursor.execute(self._pks_sql, (json.dumps(member_ids),)).fetchall())
        finally:
            cursor.close()


@contextmanager
def _parsed_here(
    records: CsvRecords,
    columns: list[str],
    known: dict[str, int],
    result: ImportResult,
    chunk_size: int,
    raw: IO[bytes],
) -> Iterator[Iterator[Chunk]]:
    """Chunks read and checked in this process, between its inserts."""
    chunks = CsvEventChunks(records, columns, known, result.import_id)

    def read() -> Iterator[Chunk]:
        while True:
            chunk = chunks.read(chunk_size, raw)
            yield chunk
            if chunk[0] < chunk_size:
                return  # the end of the file

    yield read()
