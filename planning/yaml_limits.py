"""The limits on a YAML user file, checked before and while it is read, so that a hostile or
broken file costs milliseconds and little memory instead of hanging ``validate`` or a night.

* **Size**: a file larger than ``MAX_FILE_BYTES`` is refused unread.
* **Nesting**: ruamel.yaml's scanner slows down with every open flow collection (10,000
  nested ``[`` take minutes) and its composer recurses, so ``nesting_problem`` estimates
  the nesting from the text first and refuses a document deeper than ``MAX_DEPTH``. The
  estimate counts flow brackets outside quotes, comments and block scalars, and block
  levels by indentation (``- - - x`` counts three); real files are 5 to 10 levels deep.
* **Values**: an alias repeats its anchor without copying it, so nine lines of aliases can
  stand for a billion values (the "billion laughs"). ``ValueBudget`` counts every value as
  the document is turned into plain Python and stops at ``MAX_VALUES``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 50
MAX_VALUES = 10_000

_INTERESTING = re.compile(r"""[\[\]{},#'"|>:&!\s-]""")
_NEEDS_SCAN = re.compile(r"""[\[{'"|>]""")  # without these, a line outside flow nests nothing
_OPENERS = "[{"
_CLOSERS = "]}"


class LimitExceeded(Exception):
    """A document breaks one of the limits above; the message says which, in plain words."""


@dataclass
class ValueBudget:
    """Counts values as a document is expanded; ``spend`` raises once ``MAX_VALUES`` pass."""

    left: int = MAX_VALUES

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise LimitExceeded(
                f"the document holds more than {MAX_VALUES:,} values once its aliases are "
                "expanded (a YAML alias bomb?)"
            )


def size_problem(size: int) -> str | None:
    """Why a file of ``size`` bytes is refused, or ``None``."""
    if size <= MAX_FILE_BYTES:
        return None
    return f"the file is {size:,} bytes; campaign files may be at most {MAX_FILE_BYTES:,} bytes"


@dataclass
class _Scan:
    """The scanner's state carried from line to line."""

    indents: list[int]
    flow: int = 0
    quote: str | None = None  # the open quote of a quoted scalar spanning lines
    block_scalar_indent: int | None = None  # the indentation a block scalar's text exceeds

    @property
    def depth(self) -> int:
        return len(self.indents) + self.flow


def _skip_quoted(line: str, start: int, quote: str) -> int | None:
    """The index after the closing ``quote`` from ``start``, or ``None`` if the line ends."""
    i = start
    while i < len(line):
        char = line[i]
        if quote == '"' and char == "\\":
            i += 2
            continue
        if char == quote:
            if quote == "'" and line.startswith("''", i):
                i += 2
                continue
            return i + 1
        i += 1
    return None


def _block_levels(scan: _Scan, line: str, indent: int, limit: int) -> int:
    """Update the block levels for a line's indentation and its leading ``- ``/``? ``
    indicators; return where the line's content starts (or where it passes ``limit``)."""
    while scan.indents and scan.indents[-1] >= indent:
        scan.indents.pop()
    scan.indents.append(indent)
    position = indent
    while line.startswith(("- ", "? "), position) and scan.depth <= limit:
        position += 2
        while line.startswith(" ", position):
            position += 1
        scan.indents.append(position)
    return position


def _scan_line(scan: _Scan, line: str, position: int, indent: int, limit: int) -> int | None:
    """Scan the rest of a line; return the column where nesting passes ``limit``."""
    at_start = True  # a new value may start here: a quote or bracket is syntax, not text
    i = position
    if scan.quote is not None:
        end = _skip_quoted(line, i, scan.quote)
        if end is None:
            return None
        scan.quote, i, at_start = None, end, False
    while i < len(line):
        match = _INTERESTING.search(line, i)
        if match is None:
            break
        if match.start() > i:
            at_start = False  # plain text
        i = match.start()
        char = line[i]
        if char.isspace():
            i += 1
            continue
        if char == "#" and (i == 0 or line[i - 1].isspace()):
            break
        if char in "'\"" and at_start:
            end = _skip_quoted(line, i + 1, char)
            if end is None:
                scan.quote = char
                return None
            i, at_start = end, False
            continue
        if char in _OPENERS and (at_start or scan.flow):
            scan.flow += 1
            if scan.depth > limit:
                return i + 1
            i, at_start = i + 1, True
            continue
        if char in _CLOSERS and scan.flow:
            scan.flow -= 1
            i, at_start = i + 1, False
            continue
        if char in "|>" and at_start and not scan.flow:
            scan.block_scalar_indent = indent
            return None
        if char == "," and scan.flow:
            at_start = True
        elif char == ":" and (i + 1 == len(line) or line[i + 1].isspace() or scan.flow):
            at_start = True
        elif char == "-" and at_start and line.startswith("- ", i):
            at_start = True
        elif char in "&!" and at_start:
            while i < len(line) and not line[i].isspace():
                i += 1
            continue
        else:
            at_start = False
        i += 1
    return None


def nesting_problem(text: str, limit: int = MAX_DEPTH) -> tuple[int, int, str] | None:
    """Line, column and message where ``text`` nests deeper than ``limit``, or ``None``."""
    scan = _Scan(indents=[])
    for number, line in enumerate(text.splitlines(), 1):
        content = line.lstrip(" ")
        indent = len(line) - len(content)
        if scan.block_scalar_indent is not None:
            if not content.strip() or indent > scan.block_scalar_indent:
                continue
            scan.block_scalar_indent = None
        position = indent
        if scan.flow == 0 and scan.quote is None:
            if not content.strip() or content.startswith("#"):
                continue
            if content.startswith(("---", "...")):
                scan.indents.clear()
                continue
            position = _block_levels(scan, line, indent, limit)
            if scan.depth > limit:
                return number, position + 1, _too_deep(limit)
            if _NEEDS_SCAN.search(line, position) is None:
                continue
        column = _scan_line(scan, line, position, indent, limit)
        if column is not None:
            return number, column, _too_deep(limit)
    return None


def _too_deep(limit: int) -> str:
    return f"the document is nested more than {limit} levels deep"
