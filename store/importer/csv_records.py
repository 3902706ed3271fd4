"""The records of a CSV file, read so that a broken quote costs one row and not the rows after it.

Python's ``csv`` reader, given a quote that is never closed, reads every following line into
that one field: up to its size limit (the import used to stop there), or to the end of the
file (the rows after it vanished into one cell and the import said "rejected 0"). Here the
reader is strict, so a closing quote must end its field, and it reads the file's lines
through ``CsvRecords``, which keeps the lines of the chunk being read. A record that is not
well-formed CSV (a quote never closed, text after a closing quote, a field past the reader's
size limit, or a record over several lines with the wrong number of fields) is rejected at
the line where it starts, and reading goes on from the line after it: the lines the quote
took are read again, as rows of their own.

A well-formed field may span lines (an address, pretty-printed ``properties``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from itertools import chain
from typing import IO, Any

from store.rows import FIELD_LIMIT, RowError

# What the strict reader says, in the words of an import's reject (csv's own messages name
# characters, not the problem).
_QUOTE_LEFT_OPEN = "a quote opened on this line is never closed"
_TEXT_AFTER_QUOTE = "a quote opened on this line closes before text, not at the end of a field"
_TOO_LONG = f"a field longer than {FIELD_LIMIT:,} characters (is a quote left open?)"
_READ_AGAIN = "; the lines after this one were read as rows of their own"


class CsvRecords:
    """A strict ``csv.reader`` over the lines of ``stream``, and the lines it read.

    ``reader`` is the current reader (replaced when a broken record is skipped), ``kept`` the
    lines read since ``forget`` (call it between records, say at each chunk), ``base`` the
    number of lines before ``kept[0]``, and ``start`` the line the next record starts on.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._lines: Iterator[str] = iter(stream)
        self.kept: list[str] = []
        self.base = 0
        self.start = 1
        self.reader: Any = self._reader(self._lines)

    def _reader(self, lines: Iterator[str]) -> Any:
        return csv.reader(self._feed(lines), strict=True)

    def _feed(self, lines: Iterator[str]) -> Iterator[str]:
        keep = self.kept.append
        for line in lines:
            keep(line)
            yield line

    def forget(self) -> None:
        """Drop the kept lines: every record in them has been read."""
        self.base += len(self.kept)
        self.kept.clear()

    def header(self) -> list[str] | None:
        """The first record (``csv.Error`` if it is broken), or ``None`` for an empty file."""
        values: list[str] | None = next(self.reader, None)
        self.start = self.base + len(self.kept) + 1
        return values

    def broken(self, line: int, exc: csv.Error) -> tuple[RowError, list[str]]:
        """Reject the record that starts on ``line`` (the reader raised ``exc`` in it)."""
        text = str(exc)
        if "unexpected end of data" in text:
            reason = _QUOTE_LEFT_OPEN
        elif "field larger than field limit" in text:
            reason = _TOO_LONG
        elif "expected after" in text:
            reason = _TEXT_AFTER_QUOTE
        else:
            reason = f"not well-formed CSV ({text})"
        return self.skip(line, reason)

    def skip(self, line: int, reason: str) -> tuple[RowError, list[str]]:
        """Reject the record that starts on ``line`` and read on from the line after it.

        Returns the error and the cells of that line alone, for the rejects file."""
        index = line - self.base - 1
        first = self.kept[index]
        again = self.kept[index + 1 :]
        del self.kept[index + 1 :]
        self.reader = self._reader(chain(again, self._lines))
        self.start = line + 1
        return RowError("row", reason + _READ_AGAIN), cells_of(first)

    def records(self, width: int) -> Iterator[tuple[int, list[str] | RowError, list[str]]]:
        """(line, cells or the error, the original cells) for each record but blank lines."""
        while True:
            self.forget()
            line = self.start
            try:
                values = next(self.reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield line, *self.broken(line, exc)
                continue
            self.start = end = self.base + len(self.kept) + 1
            if not values:
                continue  # a blank line
            if len(values) == width:
                yield line, values, values
            elif end - line > 1:
                yield line, *self.skip(line, spanning(width, values, line, end - 1))
            else:
                yield line, wrong_width(width, values), values


def wrong_width(width: int, values: list[str]) -> RowError:
    return RowError("row", f"expected {width} fields, got {len(values)}")


def spanning(width: int, values: list[str], first: int, last: int) -> str:
    """Why a record over lines ``first``–``last`` with the wrong width is rejected."""
    return (
        f"expected {width} fields, got {len(values)} in a record over lines {first} to {last} "
        "(is a quote left open?)"
    )


def cells_of(line: str) -> list[str]:
    """One line's cells, read leniently (for the rejects file: the line as it was)."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return [line.rstrip("\r\n")]
