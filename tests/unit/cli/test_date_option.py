"""The CLI's one date parser (``--as-of``, ``--from``, ``--to``, ``--end``) and the reflow of
help paragraphs: pure helpers, tested without running a command."""

from __future__ import annotations

from datetime import date

import pytest

from cli.help_format import reflow
from cli.options import parse_date
from nudgeflow.errors import NudgeflowError

TODAY = date(2026, 11, 29)


def test_a_date_in_range_is_parsed() -> None:
    assert parse_date("--as-of", "2026-11-21", TODAY) == date(2026, 11, 21)
    assert parse_date("--as-of", " 2027-11-29 ", TODAY) == date(2027, 11, 29)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("21/11/2026", "--as-of: expected a date as YYYY-MM-DD, got '21/11/2026'"),
        ("20261121", "--as-of: expected a date as YYYY-MM-DD, got '20261121'"),
        ("2026-W47-6", "--as-of: expected a date as YYYY-MM-DD, got '2026-W47-6'"),
        ("2026-02-30", "--as-of: expected a date as YYYY-MM-DD, got '2026-02-30' (no such day)"),
        (
            "1969-12-31",
            "--as-of: 1969-12-31 is out of range: use a date from 1970-01-01 to 2027-11-29 "
            "(a year from today)",
        ),
        (
            "9999-12-31",
            "--as-of: 9999-12-31 is out of range: use a date from 1970-01-01 to 2027-11-29 "
            "(a year from today)",
        ),
    ],
)
def test_a_bad_date_is_one_line_naming_the_option(text: str, message: str) -> None:
    with pytest.raises(NudgeflowError) as caught:
        parse_date("--as-of", text, TODAY)
    assert str(caught.value) == message


def test_reflow_joins_the_lines_of_each_paragraph() -> None:
    doc = """First line
    goes on here.

    Second paragraph,
        indented.

    \b
    kept
    as written
    """
    assert reflow(doc) == (
        "First line goes on here.\n\nSecond paragraph, indented.\n\n\b\nkept\nas written"
    )
    assert reflow(None) is None
