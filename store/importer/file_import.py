"""One import of a members or events file, from the whole-file checks to the last chunk: each
chunk of records is checked, written in its own transaction and its bad rows noted."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, Any

from sqlalchemy.engine import Engine

from store.importer.checking import check_records
from store.importer.event_writer import EventWriter
from store.importer.forgotten import ForgottenMembers, Returning
from store.importer.member_writer import MemberWriter
from store.importer.postgres_events import PostgresCsvEvents
from store.importer.reading import (
    Progress,
    Record,
    check_utf8,
    detect_format,
    open_file,
    open_text,
    read_records,
)
from store.importer.rejects import ImportResult, Rejects, note_bad_rows
from store.importer.sqlite_events import SqliteCsvEvents
from store.importer.statements import finish_import, is_postgres, start_import
from store.rows import EventRow, Kind, MemberRow, RowProblem, parse_event, parse_member


def import_file(
    engine: Engine,
    kind: Kind,
    path: Path,
    *,
    file_format: str | None = None,
    chunk_size: int = 5000,
    progress: Progress | None = None,
    returning: Returning | None = None,
) -> ImportResult:
    """Import a members or events file; raise ``ImportFileError`` if it cannot be read.

    With ``returning``, a members import refuses rows of forgotten members (or takes them
    back when it allows them: ``store.importer.forgotten``)."""
    fmt = detect_format(path, file_format)
    check_utf8(path)
    raw = open_file(path)
    with raw, open_text(raw, fmt) as stream:
        csv_records, header, columns, records = read_records(stream, fmt, kind, path)
        result = ImportResult(kind, path)
        parse: Callable[[dict[str, Any]], MemberRow | EventRow] = (
            parse_member if kind == "members" else parse_event
        )
        with engine.connect() as conn, Rejects(path, header) as rejects, _without_cyclic_gc():
            result.import_id = start_import(conn, kind, path)
            try:
                if csv_records is not None and kind == "events":
                    fused = (PostgresCsvEvents if is_postgres(conn) else SqliteCsvEvents)(
                        conn, result, rejects
                    )
                    fused.run(csv_records, columns, chunk_size, raw, progress)
                    return result
                writer: MemberWriter | EventWriter = (
                    MemberWriter(conn, result) if kind == "members" else EventWriter(conn, result)
                )
                forgotten = (
                    ForgottenMembers(conn, returning)
                    if returning is not None and kind == "members"
                    else None
                )
                if forgotten is not None:
                    result.unchecked_forgotten = forgotten.other_keys
                while chunk := list(islice(records, chunk_size)):
                    _import_chunk(chunk, parse, writer, rejects, result, forgotten)
                    conn.commit()  # one short transaction per chunk: other writers can go on
                    _done(raw, progress)
            finally:
                conn.rollback()  # whatever an error left unfinished
                finish_import(conn, result)
                result.rejects_path = rejects.path if rejects.written else None
    return result


def _done(raw: IO[bytes], progress: Progress | None) -> None:
    if progress is not None:
        progress(raw.tell())


def _import_chunk(
    chunk: list[Record],
    parse: Callable[[dict[str, Any]], MemberRow | EventRow],
    writer: MemberWriter | EventWriter,
    rejects: Rejects,
    result: ImportResult,
    forgotten: ForgottenMembers | None = None,
) -> None:
    good, bad = check_records(chunk, parse)
    if forgotten is not None:
        good = forgotten.sift(good, bad)
    warnings: list[RowProblem] = []
    writer.write(good, bad, warnings)
    if forgotten is not None:
        forgotten.settle()
        result.returned = forgotten.returned
    note_bad_rows(bad, warnings, rejects, result)


@contextmanager
def _without_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector: millions of short-lived rows (which form no cycles) would
    otherwise trigger a collection every few hundred rows, a quarter of the import's time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
