"""Reading an import file: its format, the whole-file UTF-8 check, and its records one by one
(CSV rows against the checked header, JSON Lines objects), each with its line number."""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from nudgeflow.errors import ImportFileError
from nudgeflow.userfiles import not_a_file
from store.rows import Kind, RowError, check_columns, column_name

Format = Literal["csv", "jsonl"]
Progress = Callable[[int], None]  # called with the number of bytes read so far
Record = tuple[int, dict[str, Any] | RowError, list[str]]  # line, values, original fields

EXTENSIONS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
_NEWLINE = {"csv": "", "jsonl": "\n"}  # csv needs newline=""; JSON Lines split on \n only


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
        columns = check_columns(header, kind)
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
            raise broken_csv(path, start, exc) from None
        line, start = start, reader.line_num + 1
        if not values:
            continue  # a blank line
        if len(values) != width:
            yield line, wrong_width(width, values), values
        else:
            yield line, dict(zip(columns, values, strict=False)), values  # lengths checked


def wrong_width(width: int, values: list[str]) -> RowError:
    return RowError("row", f"expected {width} fields, got {len(values)}")


def broken_csv(path: Path, line: int, exc: csv.Error) -> ImportFileError:
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
                name = names[key] = column_name(key)
            record[name] = item
        yield line, record, [text]
