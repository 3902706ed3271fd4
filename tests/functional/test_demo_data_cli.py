"""``nudgeflow demo-data`` through the real console script."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.runner import Nudgeflow


def test_writes_both_files_and_one_summary_line(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ("demo-data", "--members", "40", "--days", "90", "--seed", "5")
    result = nudgeflow(*args, "--end", "2025-03-31", "--out", str(out))

    assert result.returncode == 0, result.stderr
    members = (out / "members.csv").read_text(encoding="utf-8").splitlines()
    events = (out / "events.csv").read_text(encoding="utf-8").splitlines()
    assert members[0].startswith("member_id,email,first_name,last_name,joined_at,birthday,")
    assert events[0] == "event_id,member_id,type,occurred_at,amount,currency,properties"
    assert len(members) == 41
    assert result.stdout == (
        f"wrote 40 members and {len(events) - 1} events to {out} "
        "(seed 5, 90 days ending 2025-03-31)\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["events.csv", "members.csv"]

    # Running again with the same arguments replaces the files with the same bytes.
    before = (out / "events.csv").read_bytes()
    again = nudgeflow(*args, "--end", "2025-03-31", "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert (out / "events.csv").read_bytes() == before


def test_end_defaults_to_today_and_out_to_var_demo(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    result = nudgeflow("demo-data", "--members", "3", "--days", "7")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote 3 members and ")
    assert "to var/demo (seed 1, 7 days ending 20" in result.stdout
    assert (tmp_path / "var" / "demo" / "members.csv").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--members", "0"), "error: --members: expected at least 1, got 0"),
        (("--days", "0"), "error: --days: expected 1 to 36500, got 0"),
        (("--end", "2025-02-30"), "error: --end: expected a date as YYYY-MM-DD"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    nudgeflow: Nudgeflow, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = nudgeflow("demo-data", *args, "--out", str(tmp_path / "demo"))

    assert result.returncode == 2
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "demo").exists()


def test_help_says_determinism_needs_the_same_end(nudgeflow: Nudgeflow) -> None:
    result = nudgeflow("demo-data", "--help")

    assert result.returncode == 0
    assert "--end" in result.stdout
    assert "byte-identical" in result.stdout
