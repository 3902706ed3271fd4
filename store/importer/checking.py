"""Checking rows: a chunk of records parsed into good rows and line-numbered bad ones, and
``CsvEventChunks``, which checks CSV event rows straight into insert parameters (in the
importing process or in the reader process), with the member keys it may preload. Both read
CSV through ``store.importer.csv_records``, so a broken quote costs one row on either path."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from itertools import islice
from typing import IO, Any

from store.importer.csv_records import CsvRecords, spanning, wrong_width
from store.importer.reading import Record
from store.rows import EventRow, MemberRow, RowError, csv_event_parser

Bad = tuple[int, RowError, list[str]]  # line, error, cells
Miss = tuple[int, int, list[str], str]  # index in the parameters, line, cells, member_id
# lines read, insert parameters, bad rows, rows whose member key is still to find, rows
# skipped as repeats of an event_id in the chunk, bytes of the file read so far
Chunk = tuple[int, list[Any], list[Bad], list[Miss], int, int]

# Preload member keys for an events import up to this many members (~130 bytes each).
PRELOAD_MEMBERS = 2_000_000


def check_records(
    chunk: list[Record], parse: Callable[[dict[str, Any]], MemberRow | EventRow]
) -> tuple[list[tuple[int, Any, list[str]]], list[Bad]]:
    """The chunk's records parsed: (line, row, cells) for the good ones, the bad ones apart."""
    good: list[tuple[int, Any, list[str]]] = []
    bad: list[Bad] = []
    for line, values, original in chunk:
        if isinstance(values, RowError):
            bad.append((line, values, original))
            continue
        try:
            good.append((line, parse(values), original))
        except RowError as exc:
            bad.append((line, exc, original))
    return good, bad


def member_keys(cursor: Any, file_size: int) -> dict[str, int]:
    """Every member's key, if the table is small enough to hold and the file large enough to
    pay for reading it (a member costs about what looking up ~3 event rows costs)."""
    (count,) = cursor.execute("SELECT count(*) FROM members").fetchone()
    if count > PRELOAD_MEMBERS or count * 16 > file_size:
        return {}
    return dict(cursor.execute("SELECT member_id, id FROM members"))


class CsvEventChunks:
    """Reads a CSV events file chunk by chunk into ``executemany`` parameters."""

    def __init__(
        self, records: CsvRecords, columns: list[str], known: dict[str, int], import_id: int
    ) -> None:
        self._records = records
        self._parse = csv_event_parser(columns)
        self._width = len(columns)
        self._known = known
        self._import_id = import_id

    def read(self, size: int, raw: IO[bytes]) -> Chunk:
        """Up to ``size`` records (fewer only at the end of the file), checked."""
        params: list[Any] = []
        bad: list[Bad] = []
        misses: list[Miss] = []
        seen: set[str] = set()
        unchanged = 0
        records = self._records
        records.forget()  # the previous chunk ended with a whole record
        kept, base = records.kept, records.base
        parse, width = self._parse, self._width
        known = self._known.get
        dumps = json.dumps
        import_id = self._import_id
        start = records.start
        count = 0
        while count < size:
            try:
                for values in islice(records.reader, size - count):
                    count += 1
                    line = start
                    start = base + len(kept) + 1
                    if len(values) != width:
                        if not values:
                            continue  # a blank line
                        if start - line > 1:  # over several lines: a quote left open?
                            reason = spanning(width, values, line, start - 1)
                            bad.append((line, *records.skip(line, reason)))
                            start = line + 1
                            break  # on with the reader that reads the lines after ``line``
                        bad.append((line, wrong_width(width, values), values))
                        continue
                    try:
                        row = parse(values)
                    except RowError as exc:
                        bad.append((line, exc, values))
                        continue
                    event_id = row[0]
                    if event_id in seen:
                        unchanged += 1  # the same event_id earlier in this chunk: first wins
                        continue
                    seen.add(event_id)
                    pk = known(row[1])
                    if pk is None:
                        misses.append((len(params), line, values, row[1]))
                    properties: Any = row[6]
                    if properties is not None:
                        properties = dumps(properties)
                    params.append(
                        (event_id, pk, row[2], row[3], row[4], row[5], properties, import_id)
                    )
                else:
                    break  # ``size`` records read, or the end of the file
            except csv.Error as exc:
                count += 1
                bad.append((start, *records.broken(start, exc)))
                start += 1
        records.start = start
        return count, params, bad, misses, unchanged, raw.tell()
