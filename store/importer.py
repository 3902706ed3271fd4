"""Import members and events from CSV or JSON Lines: streamed in chunks, set-based, idempotent.

A file is checked whole before anything is written (readable, UTF-8, a usable header); a
file that fails raises ``ImportFileError`` and imports nothing. Then each chunk of rows is
parsed (``store.rows``), classified with one ``IN (...)`` query and written with
``executemany`` in its own transaction, so memory stays flat however long the file is.
Bad rows go to ``<file>.rejects.csv``; every good row is imported.

CSV events into SQLite, the ten-million-row case, take a fused path (``_SqliteCsvEvents``):
no per-row dicts, member keys preloaded, and a large file read in a second process.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import json
import os
import pickle
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from nudgeflow.errors import ImportFileError, StoreError
from store import rows
from store.rows import EventRow, Kind, MemberRow, RowError, RowProblem
from store.schema import events, imports, member_tags, members

Format = Literal["csv", "jsonl"]
Progress = Callable[[int], None]  # called with the number of bytes read so far
Record = tuple[int, dict[str, Any] | RowError, list[str]]  # line, values, original fields

EXTENSIONS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
SHOWN_PROBLEMS = 50
# ``None`` must become SQL NULL, not the JSON text 'null' that the plain JSON type writes.
_JSON_OR_NULL = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)


@dataclass
class ImportResult:
    """What one import did; ``problems`` keeps the first ``SHOWN_PROBLEMS`` to show."""

    kind: Kind
    path: Path
    import_id: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    warnings: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    rejects_path: Path | None = None

    @property
    def more_problems(self) -> int:
        return self.rejected + self.warnings - len(self.problems)

    def summary(self) -> str:
        text = f"imported {self.imported}, updated {self.updated}, rejected {self.rejected}"
        text += f"; unchanged {self.unchanged}"
        if self.rejects_path is not None:
            text += f"; rejected rows written to {self.rejects_path}"
        return text

    def note(self, problem: RowProblem) -> None:
        if problem.warning:
            self.warnings += 1
        else:
            self.rejected += 1
        if len(self.problems) < SHOWN_PROBLEMS:
            self.problems.append(problem)


def detect_format(path: Path, requested: str | None = None) -> Format:
    """``--format`` if given, else the file's extension."""
    if requested is not None:
        if requested.lower() not in ("csv", "jsonl"):
            raise ImportFileError(f"{path}: unknown format {requested!r} (expected csv or jsonl)")
        return "csv" if requested.lower() == "csv" else "jsonl"
    found = EXTENSIONS.get(path.suffix.lower())
    if found is None:
        raise ImportFileError(
            f"{path}: unknown format (expected a .csv, .jsonl or .ndjson file, "
            "or --format csv|jsonl)"
        )
    return found


def import_file(
    engine: Engine,
    kind: Kind,
    path: Path,
    *,
    file_format: str | None = None,
    chunk_size: int = 5000,
    progress: Progress | None = None,
) -> ImportResult:
    """Import a members or events file; raise ``ImportFileError`` if it cannot be read."""
    fmt = detect_format(path, file_format)
    check_utf8(path)
    raw = _open(path)
    with raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline=_NEWLINE[fmt]) as stream:
        reader, header, columns, records = _read_records(stream, fmt, kind, path)
        result = ImportResult(kind, path)
        parse: Callable[[dict[str, Any]], MemberRow | EventRow] = (
            rows.parse_member if kind == "members" else rows.parse_event
        )
        with engine.connect() as conn, _Rejects(path, header) as rejects, _without_cyclic_gc():
            result.import_id = _start_import(conn, kind, path)
            try:
                if reader is not None and kind == "events" and not _is_postgres(conn):
                    fused = _SqliteCsvEvents(conn, result, rejects)
                    fused.run(reader, columns, chunk_size, raw, progress)
                    return result
                writer: _MemberWriter | _EventWriter = (
                    _MemberWriter(conn, result) if kind == "members" else _EventWriter(conn, result)
                )
                while chunk := list(islice(records, chunk_size)):
                    _import_chunk(chunk, parse, writer, rejects, result)
                    conn.commit()  # one short transaction per chunk: other writers can go on
                    _done(raw, progress)
            finally:
                conn.rollback()  # whatever an error left unfinished
                _finish_import(conn, result)
                result.rejects_path = rejects.path if rejects.written else None
    return result


def _done(raw: IO[bytes], progress: Progress | None) -> None:
    if progress is not None:
        progress(raw.tell())


def _import_chunk(
    chunk: list[Record],
    parse: Callable[[dict[str, Any]], MemberRow | EventRow],
    writer: _MemberWriter | _EventWriter,
    rejects: _Rejects,
    result: ImportResult,
) -> None:
    good: list[tuple[int, Any, list[str]]] = []
    bad: list[tuple[int, RowError, list[str]]] = []
    for line, values, original in chunk:
        if isinstance(values, RowError):
            bad.append((line, values, original))
            continue
        try:
            good.append((line, parse(values), original))
        except RowError as exc:
            bad.append((line, exc, original))
    warnings: list[RowProblem] = []
    writer.write(good, bad, warnings)
    _note_bad_rows(bad, warnings, rejects, result)


def _note_bad_rows(
    bad: list[tuple[int, RowError, list[str]]],
    warnings: list[RowProblem],
    rejects: _Rejects,
    result: ImportResult,
) -> None:
    """Write a chunk's rejected rows and note its problems, in line order."""
    bad.sort(key=lambda item: item[0])
    path = str(result.path)
    for line, error, original in bad:
        rejects.add(line, str(error), original)
    problems = [RowProblem(path, line, error.field, error.reason) for line, error, _ in bad]
    for problem in sorted(problems + warnings, key=lambda problem: problem.line):
        result.note(problem)


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


_NEWLINE = {"csv": "", "jsonl": "\n"}  # csv needs newline=""; JSON Lines split on \n only


def check_utf8(path: Path) -> None:
    """Read the whole file once: refuse it if it is not UTF-8 text, naming the first bad line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with _open(path) as raw:
        while block := raw.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                start = max(0, min(exc.start, len(block)))
                bad = line + block.count(b"\n", 0, start)
                raise ImportFileError(
                    f"{path}:{bad}: not UTF-8 text (byte 0x{block[start]:02x}); "
                    "save the file as UTF-8 and import it again"
                ) from None
            nul = block.find(b"\x00")
            if nul >= 0:  # UTF-16 without a BOM decodes as UTF-8 full of NULs
                bad = line + block.count(b"\n", 0, nul)
                raise ImportFileError(
                    f"{path}:{bad}: contains a NUL byte (is it UTF-16?); "
                    "save the file as UTF-8 and import it again"
                )
            line += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise ImportFileError(
                f"{path}:{line}: not UTF-8 text (truncated character at the end)"
            ) from None


def _open(path: Path) -> IO[bytes]:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None


def _read_records(
    stream: IO[str], fmt: Format, kind: Kind, path: Path
) -> tuple[Any, list[str], list[str], Iterator[Record]]:
    """The CSV reader (``None`` for JSON Lines), the columns for the rejects file, the
    checked column names, and the records; a CSV header is checked first."""
    if fmt == "jsonl":
        return None, ["record"], [], _jsonl_records(stream)
    reader = csv.reader(stream)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ImportFileError(f"{path}:1: {exc}") from None
    if header is None:
        raise ImportFileError(f"{path}: empty file; expected a header line naming the columns")
    try:
        columns = rows.check_columns(header, kind)
    except ValueError as exc:
        raise ImportFileError(f"{path}:1: {exc}") from None
    return reader, header, columns, _csv_records(reader, columns, path)


def _csv_records(reader: Any, columns: list[str], path: Path) -> Iterator[Record]:
    width = len(columns)
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _broken_csv(path, start, exc) from None
        line, start = start, reader.line_num + 1
        if not values:
            continue  # a blank line
        if len(values) != width:
            yield line, _wrong_width(width, values), values
        else:
            yield line, dict(zip(columns, values, strict=False)), values  # lengths checked


def _wrong_width(width: int, values: list[str]) -> RowError:
    return RowError("row", f"expected {width} fields, got {len(values)}")


def _broken_csv(path: Path, line: int, exc: csv.Error) -> ImportFileError:
    # Usually a stray quote swallowing the rest of the file; earlier chunks are kept.
    return ImportFileError(
        f"{path}:{line}: {exc}; rows before this line were imported, "
        "fix the file and import it again"
    )


def _jsonl_records(stream: IO[str]) -> Iterator[Record]:
    names: dict[str, str] = {}  # key → column name, so each distinct key is normalised once
    for line, raw in enumerate(stream, start=1):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        if "\\u0000" in text:  # NUL bytes were refused up front; this is the JSON escape
            yield line, RowError("record", "contains a NUL character (\\u0000)"), [text]
            continue
        try:
            value = json.loads(text)
        except ValueError as exc:
            yield line, RowError("record", f"invalid JSON: {exc}"), [text]
            continue
        if not isinstance(value, dict):
            yield line, RowError("record", "expected a JSON object"), [text]
            continue
        record = {}
        for key, item in value.items():
            name = names.get(key)
            if name is None:
                name = names[key] = rows.column_name(key)
            record[name] = item
        yield line, record, [text]


class _Rejects:
    """``<file>.rejects.csv``, opened on the first reject; a stale one is removed."""

    def __init__(self, source: Path, columns: Sequence[str]) -> None:
        self.path = source.with_name(source.name + ".rejects.csv")
        self.written = False
        self._columns = ["line", "reason", *columns]
        self._file: IO[str] | None = None
        self._writer: Any = None

    def __enter__(self) -> _Rejects:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._file is not None:
            self._file.close()
        elif self.path.exists():
            self.path.unlink()

    def add(self, line: int, reason: str, original: list[str]) -> None:
        if self._writer is None:
            try:
                self._file = self.path.open("w", encoding="utf-8", newline="")
            except OSError as exc:
                raise ImportFileError(f"{self.path}: cannot write: {exc.strerror}") from None
            self._writer = csv.writer(self._file)
            self._writer.writerow(self._columns)
            self.written = True
        self._writer.writerow([line, reason, *original])


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # DateTime columns hold naive UTC


def _start_import(conn: Connection, kind: Kind, path: Path) -> int:
    statement = imports.insert().values(kind=kind, source=str(path), started_at=_now())
    key = conn.execute(statement).inserted_primary_key
    conn.commit()
    assert key is not None
    return int(key[0])


def _finish_import(conn: Connection, result: ImportResult) -> None:
    conn.execute(
        imports.update()
        .where(imports.c.id == result.import_id)
        .values(
            finished_at=_now(),
            imported=result.imported,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=result.rejected,
        )
    )
    conn.commit()


def _insert(conn: Connection, table: sa.Table) -> Any:
    """An INSERT that skips rows whose unique key exists (a guard against concurrent imports)."""
    dialect = postgresql if _is_postgres(conn) else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _in_keys(conn: Connection, column: sa.Column[Any]) -> Any:
    """``column IN :keys`` with one bound parameter, however many keys there are.

    A plain ``in_(list)`` renders one parameter per key on every execution (slow, and capped
    by the databases); SQLite reads the keys from a JSON array, PostgreSQL from an array.
    """
    if _is_postgres(conn):
        return column == sa.any_(sa.bindparam("keys", type_=postgresql.ARRAY(column.type)))
    keys: Any = sa.select(sa.column("value"))
    return column.in_(keys.select_from(sa.func.json_each(sa.bindparam("keys"))).scalar_subquery())


def _keys(conn: Connection, values: Sequence[str | int]) -> dict[str, Any]:
    return {"keys": list(values) if _is_postgres(conn) else json.dumps(values)}


class _EventWriter:
    """Inserts new events; a known ``event_id`` is skipped (counted unchanged)."""

    COLUMNS = ("event_id", "member_pk", "type", "occurred_at", "amount_minor", "currency")

    def __init__(self, conn: Connection, result: ImportResult) -> None:
        self._conn = conn
        self._result = result
        columns = [*self.COLUMNS, "properties", "import_id"]
        values: dict[str, Any] = {name: sa.bindparam(name) for name in columns}
        values["properties"] = sa.bindparam("properties", type_=_JSON_OR_NULL)
        self._statement = _insert(conn, events).values(values)
        member_pks = sa.select(members.c.member_id, members.c.id)
        self._select_pks = member_pks.where(_in_keys(conn, members.c.member_id))
        self._columns = columns
        self._sql: str | None = None
        if not _is_postgres(conn):
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
        sqlite_path = self._sql is not None
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
            if sqlite_path and properties is not None:
                properties = json.dumps(properties)
            params.append((row[0], pk, row[2], row[3], row[4], row[5], properties, import_id))
        if not params:
            return
        conn = self._conn
        if self._sql is not None:
            inserted = conn.exec_driver_sql(self._sql, params).rowcount
        else:
            # psycopg reports no rowcount for a batched insert; the rows it returns count.
            named = [dict(zip(self._columns, values, strict=True)) for values in params]
            returning = self._statement.returning(events.c.id)
            inserted = len(conn.execute(returning, named).all())
        # ON CONFLICT DO NOTHING skipped the event_ids already stored: those are unchanged.
        result.imported += inserted
        result.unchanged += len(params) - inserted

    def _member_pks(self, member_ids: list[str]) -> dict[str, int]:
        keys = _keys(self._conn, member_ids)
        if self._sql is None:
            rows = self._conn.execute(self._select_pks, keys).all()
            return {member_id: pk for member_id, pk in rows}
        # SQLite: the driver's plain tuples, without building a SQLAlchemy Row for each one.
        cursor = self._conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        found = cursor.execute(self._pks_sql, (keys["keys"],)).fetchall()
        cursor.close()
        return dict(found)


class _MemberWriter:
    """Upserts members by ``member_id`` and replaces their import tags when the file has them."""

    def __init__(self, conn: Connection, result: ImportResult) -> None:
        self._conn = conn
        self._result = result
        self._warnings: list[RowProblem] = []
        content: dict[str, Any] = {n: sa.bindparam(f"b_{n}") for n in rows.CONTENT_COLUMNS}
        content["attributes"] = sa.bindparam("b_attributes", type_=_JSON_OR_NULL)
        trace: dict[str, Any] = {
            "import_id": sa.bindparam("b_import_id"),
            "source_line": sa.bindparam("b_line"),
        }
        self._insert = _insert(conn, members).values(
            member_id=sa.bindparam("b_member_id"),
            row_hash=sa.bindparam("b_row_hash"),
            created_at=sa.bindparam("b_now"),
            updated_at=sa.bindparam("b_now"),
            **content,
            **trace,
        )
        by_pk = members.update().where(members.c.id == sa.bindparam("b_pk"))
        self._update = by_pk.values(
            row_hash=sa.bindparam("b_row_hash"),
            updated_at=sa.bindparam("b_now"),
            **content,
            **trace,
        )
        self._touch = by_pk.values(**trace)  # unchanged, but seen in this import at this line
        self._clear_tags = member_tags.delete().where(
            member_tags.c.member_pk == sa.bindparam("b_pk"), member_tags.c.source == "import"
        )
        self._add_tags = _insert(conn, member_tags)
        columns = [members.c[name] for name in ("id", "member_id", "row_hash", "import_id")]
        columns += [members.c.source_line, *(members.c[name] for name in rows.CONTENT_COLUMNS)]
        self._select_existing = sa.select(*columns).where(_in_keys(conn, members.c.member_id))
        self._select_tags = sa.select(member_tags.c.member_pk, member_tags.c.tag).where(
            member_tags.c.source == "import", _in_keys(conn, member_tags.c.member_pk)
        )
        self._select_pks = sa.select(members.c.member_id, members.c.id).where(
            _in_keys(conn, members.c.member_id)
        )

    def write(
        self,
        good: list[tuple[int, MemberRow, list[str]]],
        bad: list[tuple[int, RowError, list[str]]],
        warnings: list[RowProblem],
    ) -> None:
        del bad  # every member row that parsed can be written
        self._warnings = warnings
        result = self._result
        latest: dict[str, tuple[int, MemberRow]] = {}
        for line, row, _original in good:
            earlier = latest.get(row.member_id)
            if earlier is not None:
                self._warn_duplicate(line, row.member_id, earlier[0])
            latest[row.member_id] = (line, row)
        if not latest:
            return
        now = _now()
        trace = {"b_import_id": result.import_id, "b_now": now}
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        touches: list[dict[str, Any]] = []
        new_tags: dict[str, tuple[str, ...]] = {}  # member_id → tags, for new members
        retag: dict[int, tuple[str, ...]] = {}  # member pk → tags, for existing members
        conn = self._conn
        existing = self._existing(conn, list(latest))
        current = self._import_tags(conn, latest, existing)
        for member_id, (line, row) in latest.items():
            old = existing.get(member_id)
            content = rows.merge_member(old, row)
            digest = rows.row_hash(content)
            params = {f"b_{k}": v for k, v in content.items()}
            params.update(trace, b_line=line, b_row_hash=digest)
            if old is None:
                inserts.append(params | {"b_member_id": member_id})
                if row.tags:
                    new_tags[member_id] = row.tags
                result.imported += 1
                continue
            repeat = old["import_id"] == result.import_id  # seen in an earlier chunk
            if repeat:
                self._warn_duplicate(line, member_id, old["source_line"])
            changed = digest != old["row_hash"]
            tags_changed = row.tags is not None and set(row.tags) != current.get(old["id"], set())
            if tags_changed:
                retag[old["id"]] = row.tags or ()
            if changed:
                updates.append(params | {"b_pk": old["id"]})
            else:
                touches.append({"b_pk": old["id"], "b_import_id": result.import_id, "b_line": line})
            if not repeat:  # each member is counted once per import
                if changed or tags_changed:
                    result.updated += 1
                else:
                    result.unchanged += 1
        self._execute(conn, inserts, updates, touches)
        self._write_tags(conn, new_tags, retag)

    def _warn_duplicate(self, line: int, member_id: str, earlier: int) -> None:
        message = f"{member_id!r} is also on line {earlier}; line {line} wins"
        problem = RowProblem(str(self._result.path), line, "member_id", message, warning=True)
        self._warnings.append(problem)

    def _existing(self, conn: Connection, member_ids: list[str]) -> dict[str, dict[str, Any]]:
        rows_ = conn.execute(self._select_existing, _keys(conn, member_ids)).mappings()
        return {row["member_id"]: dict(row) for row in rows_}

    def _import_tags(
        self,
        conn: Connection,
        latest: dict[str, tuple[int, MemberRow]],
        existing: dict[str, dict[str, Any]],
    ) -> dict[int, set[str]]:
        """Current import tags of the existing members whose rows carry tags."""
        pks = [old["id"] for mid, old in existing.items() if latest[mid][1].tags is not None]
        tags: dict[int, set[str]] = {}
        if pks:
            found = conn.execute(self._select_tags, _keys(conn, pks))
            for pk, tag in found:
                tags.setdefault(pk, set()).add(tag)
        return tags

    def _execute(
        self,
        conn: Connection,
        inserts: list[dict[str, Any]],
        updates: list[dict[str, Any]],
        touches: list[dict[str, Any]],
    ) -> None:
        for statement, params in (
            (self._insert, inserts),
            (self._update, updates),
            (self._touch, touches),
        ):
            if params:
                conn.execute(statement, params)

    def _write_tags(
        self,
        conn: Connection,
        new_tags: dict[str, tuple[str, ...]],
        retag: dict[int, tuple[str, ...]],
    ) -> None:
        if retag:
            conn.execute(self._clear_tags, [{"b_pk": pk} for pk in retag])
        if new_tags:
            found = conn.execute(self._select_pks, _keys(conn, list(new_tags)))
            retag.update((pk, new_tags[member_id]) for member_id, pk in found)
        tag_rows = [
            {"member_pk": pk, "tag": tag, "source": "import"}
            for pk, tags in retag.items()
            for tag in tags
        ]
        if tag_rows:
            conn.execute(self._add_tags, tag_rows)


class _SqliteCsvEvents:
    """Events from a CSV file into SQLite in one loop: read, check, key and insert each row.

    The general path builds a dict, a parsed row and a writer's tuple for each row and hands
    them along in lists; at ten million rows that glue cost more than the inserts. Here a row
    goes from the CSV reader's list straight to the tuple ``executemany`` takes, and member
    keys come from a dict loaded once (when the file is large next to the members table).
    A large file is read and checked in a second process while this one inserts. Counting,
    first-wins within a chunk, rejects and their order are the general path's.
    """

    def __init__(self, conn: Connection, result: ImportResult, rejects: _Rejects) -> None:
        self._conn = conn
        self._result = result
        self._rejects = rejects
        self._insert_sql, self._pks_sql = _EventWriter(conn, result).sqlite_statements()

    def _cursor(self) -> Any:
        return self._conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def run(
        self,
        reader: Any,
        columns: list[str],
        chunk_size: int,
        raw: IO[bytes],
        progress: Progress | None,
    ) -> None:
        result = self._result
        file_size = result.path.stat().st_size
        database = self._conn.engine.url.database or ""
        separate = (
            file_size >= PARALLEL_FROM_BYTES
            and (os.cpu_count() or 1) > 1
            and _is_plain_file(database)
        )
        with (
            (
                _parsed_elsewhere(result.path, database, result.import_id, chunk_size)
                if separate
                else _parsed_here(
                    reader, columns, self._preload(file_size), result, chunk_size, raw
                )
            ) as chunks,
            self._fewer_checkpoints(),
        ):
            for _count, params, bad, misses, unchanged, offset in chunks:
                if misses:
                    params = self._resolve(params, misses, bad)
                if params:
                    inserted = self._conn.exec_driver_sql(self._insert_sql, params).rowcount
                    # ON CONFLICT DO NOTHING skipped the event_ids already stored: unchanged.
                    result.imported += inserted
                    unchanged += len(params) - inserted
                result.unchanged += unchanged
                _note_bad_rows(bad, [], self._rejects, result)
                self._conn.commit()  # one short transaction per chunk: other writers go on
                if progress is not None:
                    progress(offset)

    @contextmanager
    def _fewer_checkpoints(self) -> Iterator[None]:
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

    def _preload(self, file_size: int) -> dict[str, int]:
        cursor = self._cursor()
        try:
            return _member_keys(cursor, file_size)
        finally:
            cursor.close()

    def _resolve(self, params: list[Any], misses: list[_Miss], bad: list[_Bad]) -> list[Any]:
        """Fill in the member keys not preloaded; reject the rows of unknown members."""
        cursor = self._cursor()
        try:
            member_ids = json.dumps(list({miss[3] for miss in misses}))
            found = dict(cursor.execute(self._pks_sql, (member_ids,)).fetchall())
        finally:
            cursor.close()
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


_Miss = tuple[int, int, list[str], str]  # index in the parameters, line, cells, member_id
_Bad = tuple[int, RowError, list[str]]
# lines read, insert parameters, bad rows, rows whose member key is still to find, rows
# skipped as repeats of an event_id in the chunk, bytes of the file read so far
_Chunk = tuple[int, list[Any], list[_Bad], list[_Miss], int, int]

_IMPORT_CHECKPOINT = 20_000  # WAL pages (4 KiB) between checkpoints during an events import
# Preload member keys for an events import up to this many members (~130 bytes each).
PRELOAD_MEMBERS = 2_000_000
# Read and check CSV events in a second process (given a second core) from this file size
# (~280 k events): below it, starting the process (~0.3 s) costs about what it saves.
PARALLEL_FROM_BYTES = 16 << 20


def _is_plain_file(database: str) -> bool:
    return bool(database) and database != ":memory:" and not database.startswith("file:")


def _member_keys(cursor: Any, file_size: int) -> dict[str, int]:
    """Every member's key, if the table is small enough to hold and the file large enough to
    pay for reading it (a member costs about what looking up ~3 event rows costs)."""
    (count,) = cursor.execute("SELECT count(*) FROM members").fetchone()
    if count > PRELOAD_MEMBERS or count * 16 > file_size:
        return {}
    return dict(cursor.execute("SELECT member_id, id FROM members"))


class _CsvEventChunks:
    """Reads a CSV events file chunk by chunk into ``executemany`` parameters."""

    def __init__(
        self, reader: Any, columns: list[str], known: dict[str, int], import_id: int, path: Path
    ) -> None:
        self._reader = reader
        self._parse = rows.csv_event_parser(columns)
        self._width = len(columns)
        self._known = known
        self._import_id = import_id
        self._path = path
        self._start = reader.line_num + 1

    def read(self, size: int, raw: IO[bytes]) -> _Chunk:
        """Up to ``size`` lines; a broken CSV raises ``ImportFileError`` naming its line."""
        params: list[Any] = []
        bad: list[_Bad] = []
        misses: list[_Miss] = []
        seen: set[str] = set()
        unchanged = 0
        reader, parse, width = self._reader, self._parse, self._width
        known = self._known.get
        dumps = json.dumps
        import_id = self._import_id
        start = self._start
        count = 0
        lines = enumerate(islice(reader, size), start=1)
        try:
            for count, values in lines:  # noqa: B007 (the count is the loop's result)
                line = start
                start = reader.line_num + 1
                if len(values) != width:
                    if values:  # else a blank line
                        bad.append((line, _wrong_width(width, values), values))
                    continue
                try:
                    row = parse(values)
                except RowError as exc:
                    bad.append((line, exc, values))
                    continue
                event_id = row[0]
                if event_id in seen:
                    unchanged += 1  # the same event_id earlier in this chunk: the first wins
                    continue
                seen.add(event_id)
                pk = known(row[1])
                if pk is None:
                    misses.append((len(params), line, values, row[1]))
                properties: Any = row[6]
                if properties is not None:
                    properties = dumps(properties)
                params.append((event_id, pk, row[2], row[3], row[4], row[5], properties, import_id))
        except csv.Error as exc:
            raise _broken_csv(self._path, start, exc) from None
        self._start = start
        return count, params, bad, misses, unchanged, raw.tell()


@contextmanager
def _parsed_here(
    reader: Any,
    columns: list[str],
    known: dict[str, int],
    result: ImportResult,
    chunk_size: int,
    raw: IO[bytes],
) -> Iterator[Iterator[_Chunk]]:
    chunks = _CsvEventChunks(reader, columns, known, result.import_id, result.path)

    def read() -> Iterator[_Chunk]:
        while True:
            chunk = chunks.read(chunk_size, raw)
            yield chunk
            if chunk[0] < chunk_size:
                return  # the end of the file

    yield read()


@contextmanager
def _parsed_elsewhere(
    path: Path, database: str, import_id: int, chunk_size: int
) -> Iterator[Iterator[_Chunk]]:
    """Chunks read and checked by a second process (member keys included) while this one
    inserts; it is stopped if this one stops early.

    A plain ``python -c`` child talking pickles over a pipe, not ``multiprocessing``: spawn
    would re-run the caller's main module, and fork would copy open SQLite connections. The
    pipe holds less than a chunk, so the reader stays at most one chunk ahead.
    """
    # The child imports this module from where this process found it: its sys.path, and
    # not the current directory first (-P).
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(entry for entry in sys.path if entry)
    worker = subprocess.Popen(
        [sys.executable, "-P", "-c", "from store.importer import _read_events; _read_events()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=environment,
    )
    assert worker.stdin is not None and worker.stdout is not None
    incoming = worker.stdout

    def receive() -> Iterator[_Chunk]:
        while True:
            try:
                kind, item = pickle.load(incoming)
            except EOFError:
                raise StoreError(
                    f"{path}: the import's reader process ended without a word "
                    f"(exit code {worker.wait()})"
                ) from None
            if kind == "error":
                raise ImportFileError(item)
            if kind == "crash":
                raise StoreError(f"{path}: the import's reader process failed:\n{item}")
            yield item
            if item[0] < chunk_size:
                return

    try:
        with worker.stdin as outgoing:
            pickle.dump((str(path), database, import_id, chunk_size), outgoing)
        yield receive()
    finally:
        if worker.poll() is None:
            worker.kill()  # stopped early: an error here, or an interrupt
        worker.wait()
        incoming.close()


def _read_events() -> None:
    """The reader process: send the chunks of a CSV events file (already checked whole)."""
    gc.disable()
    outgoing = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr  # nothing else may write into the pipe
    path, database, import_id, chunk_size = pickle.load(sys.stdin.buffer)
    try:
        uri = Path(database).resolve().as_uri() + "?mode=ro"
        connection = sqlite3.connect(uri, uri=True)
        try:
            known = _member_keys(connection.cursor(), Path(path).stat().st_size)
        finally:
            connection.close()
        with (
            open(path, "rb") as raw,
            io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as stream,
        ):
            reader = csv.reader(stream)
            columns = rows.check_columns(next(reader), "events")
            chunks = _CsvEventChunks(reader, columns, known, import_id, Path(path))
            while True:
                chunk = chunks.read(chunk_size, raw)
                pickle.dump(("chunk", chunk), outgoing, protocol=pickle.HIGHEST_PROTOCOL)
                outgoing.flush()
                if chunk[0] < chunk_size:
                    break
    except ImportFileError as exc:
        pickle.dump(("error", str(exc)), outgoing)
    except BrokenPipeError:
        return  # the importer stopped
    except BaseException:
        pickle.dump(("crash", traceback.format_exc()), outgoing)
    outgoing.close()
