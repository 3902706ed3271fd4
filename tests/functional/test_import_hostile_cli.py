"""A hostile import file through the real console script: a quote left open costs one row,
reported by line, and the rows after it are imported (it used to say "rejected 0")."""

from __future__ import annotations

from pathlib import Path

from tests.functional.runner import Nudgeflow


def test_an_unterminated_quote_is_one_rejected_row(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    (tmp_path / "members.csv").write_text(
        "member_id,email,first_name,plan\n"
        "m1,ann@example.com,Ann,gold\n"
        'm2,bob@example.com,Bob,"silver\n'
        "m3,cat@example.com,Cat,gold\n"
        "m4,dan@example.com,Dan,bronze\n"
    )
    result = nudgeflow("members", "import", "members.csv")
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "members.csv:3: row: a quote opened on this line is never closed; the lines after "
        "this one were read as rows of their own"
    ]
    assert result.stdout.startswith("imported 3, updated 0, rejected 1; unchanged 0")
    rejects = (tmp_path / "members.csv.rejects.csv").read_text().splitlines()
    assert rejects[1].startswith("3,row: a quote opened on this line is never closed")
