"""Reading an import file: its format, the whole-file UTF-8 check, and its records one by one
(CSV rows against the checked header, JSON Lines objects), each with its line number.

A JSON Lines record is at most ``RECORD_LIMIT`` characters and is read as strict JSON
(``store.rows.load_json``); CSV records are read by ``store.importer.csv_records``."""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from nudgeflow.errors import ImportFileError
from nudgeflow.userfiles import not_a_file
from store.importer.csv_records import CsvRecords
from store.rows import Kind, RowError, check_columns, column_name, load_json

Format = Literal["csv", "jsonl"]
Progress = Callable[[int], None]  # called with the number of bytes read so far
Record = tuple[int, dict[str, Any] | RowError, list[str]]  # line, values, original fields

EXTENSIONS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_NEWLINE = {"csv": "", "jsonl": "\n"}  # csv needs newline=""; JSON Lines split on \n only
# The longest JSON Lines record (characters): room for every field at its limit but bounded,
# since a record is parsed whole.
RECORD_LIMIT = 1 << 20


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


def check_utf8(path: Path) -> None:
    """Read the whole file once: refuse it if it is not UTF-8 text, naming the first bad line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open_file(path) as raw:
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


def open_file(path: Path) -> IO[bytes]:
    """The file opened for reading bytes; ``ImportFileError`` says why it cannot be. A FIFO or
    a device is refused before it is opened: opening would wait for a writer, and an import
    reads its file twice."""
    problem = not_a_file(path)
    if problem is not None:
        raise ImportFileError(f"{path}: {problem}")
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read: {exc.strerror}") from None


def open_text(raw: IO[bytes], fmt: Format) -> io.TextIOWrapper:
    """The file's text (a leading BOM dropped), split into lines as the format wants."""
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline=_NEWLINE[fmt])


def read_records(
    stream: IO[str], fmt: Format, kind: Kind, path: Path
) -> tuple[CsvRecords | None, list[str], list[str], Iterator[Record]]:
    """The CSV records (``None`` for JSON Lines), the columns for the rejects file, the
    checked column names, and the records; a CSV header is checked first."""
    if fmt == "jsonl":
        return None, ["record"], [], _jsonl_records(stream)
    records = CsvRecords(stream)
    header = read_header(records, path)
    try:
        columns = check_columns(header, kind)
    except ValueError as exc:
        raise ImportFileError(f"{path}:1: {exc}") from None
    return records, header, columns, _csv_records(records, columns)


def _csv_records(records: CsvRecords, columns: list[str]) -> Iterator[Record]:
    for line, values, original in records.records(len(columns)):
        if isinstance(values, RowError):
            yield line, values, original
        else:
            yield line, dict(zip(columns, values, strict=True)), original


def read_header(records: CsvRecords, path: Path) -> list[str]:
    """The header line's names; ``ImportFileError`` if there is none or it is broken."""
    try:
        header = records.header()
    except csv.Error as exc:
        raise ImportFileError(f"{path}:1: the header line is not well-formed CSV ({exc})") from None
    if header is None:
        raise ImportFileError(f"{path}: empty file; expected a header line naming the columns")
    return header


def _jsonl_records(stream: IO[str]) -> Iterator[Record]:
    names: dict[str, str] = {}  # key → column name, so each distinct key is normalised once
    for line, raw in enumerate(stream, start=1):
        text = raw.rstrip("\r\n")
        if not text.strip():
            continue
        if len(text) > RECORD_LIMIT:
            yield line, RowError("record", f"longer than {RECORD_LIMIT:,} characters"), [text]
            continue
        if "\\u0000" in text:  # NUL bytes were refused up front; this is the JSON escape
            yield line, RowError("record", "contains a NUL character (\\u0000)"), [text]
            continue
        try:
            value = load_json("record", text, outer=1)  # its values may nest MAX_DEPTH deep
        except RowError as exc:
            yield line, exc, [text]
            continue
        if not isinstance(value, dict):
            yield line, RowError("record", "expected a JSON object"), [text]
            continue
        record = {}
        for key, item in value.items():
            name = names.get(key)
            if name is None:
                name = names[key] = column_name(key)
            record[name] = item
        yield line, record, [text]
