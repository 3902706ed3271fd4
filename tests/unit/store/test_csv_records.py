"""``CsvRecords``: a broken quote costs the record it opens, never the lines after it, which
are read again as rows of their own; well-formed fields may still span lines."""

from __future__ import annotations

import io

from store.importer.csv_records import CsvRecords
from store.rows import RowError


def read(text: str, width: int = 3) -> list[tuple[int, object]]:
    """(line, cells or the error's reason) for each record after the header."""
    records = CsvRecords(io.StringIO(text, newline=""))
    assert records.header() is not None
    return [
        (line, values.reason if isinstance(values, RowError) else values)
        for line, values, _original in records.records(width)
    ]


AFTER = "; the lines after this one were read as rows of their own"


def test_a_quote_never_closed_costs_its_line_only() -> None:
    text = 'a,b,c\n1,x,y\n2,"open,y\n3,x,y\n4,x,y\n'
    assert read(text) == [
        (2, ["1", "x", "y"]),
        (3, "a quote opened on this line is never closed" + AFTER),
        (4, ["3", "x", "y"]),
        (5, ["4", "x", "y"]),
    ]


def test_a_quote_closed_before_text_costs_its_line_only() -> None:
    # The stray quote on line 3 would end at the first quote of line 5.
    text = 'a,b,c\n1,x,y\n2,"stray,y\n3,x,y\n4,"ok",y\n5,x,y\n'
    found = read(text)
    assert found[1] == (
        3,
        "a quote opened on this line closes before text, not at the end of a field" + AFTER,
    )
    assert found[2:] == [(4, ["3", "x", "y"]), (5, ["4", "ok", "y"]), (6, ["5", "x", "y"])]


def test_a_record_over_lines_with_the_wrong_width_is_read_again() -> None:
    text = 'a,b,c\n1,"x\ny",z\n2,"x\n3"\n4,x,y\n'
    assert read(text) == [
        (2, ["1", "x\ny", "z"]),  # a well-formed field over two lines
        (
            4,
            "expected 3 fields, got 2 in a record over lines 4 to 5 (is a quote left open?)"
            + AFTER,
        ),
        (5, "expected 3 fields, got 1"),  # line 5 read again, on its own
        (6, ["4", "x", "y"]),
    ]


def test_a_field_past_the_reader_limit_costs_its_line_only() -> None:
    text = 'a,b,c\n1,"' + "x" * 200_000 + '",y\n2,x,y\n'
    assert read(text) == [
        (2, "a field longer than 65,536 characters (is a quote left open?)" + AFTER),
        (3, ["2", "x", "y"]),
    ]


def test_lines_are_counted_through_blank_lines_crlf_and_rereads() -> None:
    text = 'a,b,c\r\n\r\n1,x,y\r\n2,"open\r\n\r\n3,x,y\r\n'
    assert read(text) == [
        (3, ["1", "x", "y"]),
        (4, "a quote opened on this line is never closed" + AFTER),
        (6, ["3", "x", "y"]),
    ]


def test_the_rejects_file_gets_the_cells_of_the_first_line() -> None:
    records = CsvRecords(io.StringIO('a,b,c\n1,"open,y\n2,x,y\n', newline=""))
    records.header()
    line, error, original = next(records.records(3))
    assert (line, isinstance(error, RowError), original) == (2, True, ["1", "open,y\n"])
