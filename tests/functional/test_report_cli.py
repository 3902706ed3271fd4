"""``nudgeflow report`` as a user runs it: the file written where --out says, the line that
says where; a period backwards or a folder that cannot be written is one line."""

from __future__ import annotations

from pathlib import Path

from tests.functional.runner import Nudgeflow


def test_the_report_of_an_empty_database_is_written_and_said(
    nudgeflow: Nudgeflow, tmp_path: Path
) -> None:
    out = tmp_path / "reports" / "november.html"
    result = nudgeflow("report", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.split()
        == (
            f"wrote the report for 2026-11-01 to 2026-11-30 to {out}: open it in a browser (it "
            "needs no network)"
        ).split()
    )
    html = out.read_text()
    assert "<title>nudgeflow report 2026-11-01 to 2026-11-30</title>" in html
    assert "No campaign has money in the ledger by 2026-11-30." in html


def test_bad_periods_and_places_are_one_line(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    backwards = nudgeflow(
        "report", "--from", "2026-11-30", "--to", "2026-11-01", "--out", str(tmp_path / "r.html")
    )
    assert backwards.returncode == 2 and "--to is before --from" in backwards.stderr
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    nowhere = nudgeflow("report", "--to", "2026-11-30", "--out", str(blocked / "r.html"))
    assert nowhere.returncode != 0
    assert nowhere.stderr.strip().count("\n") == 0
    assert nowhere.stderr.startswith(f"error: cannot write the report to {blocked / 'r.html'}")
