"""Streaming exports shared by commands (``ledger export``, ``sends export``): where the
rows go, and CSV or a JSON array written row by row, so memory does not grow with them. CSV
cells a spreadsheet would run as formulas are neutralised (``nudgeflow.spreadsheet``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from nudgeflow.errors import NudgeflowError
from nudgeflow.spreadsheet import csv_dict_writer


@contextmanager
def output(path: Path | None) -> Iterator[TextIO]:
    """``path`` opened for writing, or standard output; a one-line error if it cannot be."""
    if path is None:
        yield sys.stdout
        return
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            yield handle
    except OSError as exc:
        raise NudgeflowError(f"--out: cannot write {path}: {exc.strerror}") from None


def write_rows(
    handle: TextIO, rows: Iterable[Mapping[str, Any]], columns: Sequence[str], fmt: str
) -> int:
    """Write ``rows`` as CSV (with a header of ``columns``) or as a JSON array; return how
    many were written."""
    count = 0
    if fmt == "csv":
        writer = csv_dict_writer(handle, columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            count += 1
        return count
    handle.write("[")
    for row in rows:
        handle.write(("\n" if count == 0 else ",\n") + json.dumps(row, ensure_ascii=False))
        count += 1
    handle.write("\n]\n")
    return count
