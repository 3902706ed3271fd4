"""``nudgeflow members import`` and ``nudgeflow events import`` through the real console script."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.functional.runner import Nudgeflow

EVENTS_HEADER = "event_id,member_id,type,occurred_at,amount,currency,properties"


@pytest.fixture
def members_file(tmp_path: Path) -> Path:
    """A members file as Excel writes it: a byte-order mark and Windows line endings."""
    path = tmp_path / "members.csv"
    text = (
        "member_id,email,first_name,tags\r\nm1,ann@example.com,Ann,vip\r\nm2,bob@example.com,,\r\n"
    )
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    return path


def test_members_with_bom_and_crlf_import_cleanly_and_idempotently(
    nudgeflow: Nudgeflow, tmp_path: Path, members_file: Path
) -> None:
    first = nudgeflow("members", "import", "members.csv")
    assert first.returncode == 0, first.stderr
    assert "imported 2, updated 0, rejected 0" in first.stdout
    assert first.stderr == ""
    assert not (tmp_path / "members.csv.rejects.csv").exists()

    again = nudgeflow("members", "import", "members.csv")
    assert again.returncode == 0, again.stderr
    assert "imported 0, updated 0, rejected 0" in again.stdout


def test_bad_rows_are_listed_and_exit_1(
    nudgeflow: Nudgeflow, tmp_path: Path, members_file: Path
) -> None:
    nudgeflow("members", "import", "members.csv")
    rows = [f"e{i},m1,purchase,2024-03-01,1.234,USD," for i in range(55)]
    rows += ["g1,m2,purchase,2024-03-01T10:00:00Z,12.50,usd,", "g2,ghost,login,2024-03-01,,,"]
    (tmp_path / "events.csv").write_text("\n".join([EVENTS_HEADER, *rows]) + "\n")
    result = nudgeflow("events", "import", "events.csv")
    assert result.returncode == 1, result.stderr
    assert "imported 1, updated 0, rejected 56" in result.stdout
    lines = result.stderr.splitlines()
    assert lines[0] == "events.csv:2: amount: '1.234' has more decimals than USD allows (2)"
    assert len(lines) == 51
    assert lines[-1] == "... and 6 more"
    rejects = (tmp_path / "events.csv.rejects.csv").read_text().splitlines()
    assert rejects[0] == "line,reason," + EVENTS_HEADER
    assert rejects[-1] == "58,member_id: unknown member 'ghost',g2,ghost,login,2024-03-01,,,"
    assert len(rejects) == 57


def test_json_lines_events(nudgeflow: Nudgeflow, tmp_path: Path, members_file: Path) -> None:
    nudgeflow("members", "import", "members.csv")
    records = [
        {"event_id": "e1", "member_id": "m1", "type": "login", "occurred_at": "2024-03-01"},
        {
            "event_id": "e2",
            "member_id": "m2",
            "type": "purchase",
            "occurred_at": "2024-03-01T10:00:00",
            "amount": "5",
            "currency": "EUR",
            "properties": {"sku": "A-1"},
        },
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    result = nudgeflow("events", "import", "events.jsonl")
    assert result.returncode == 0, result.stderr
    assert "imported 2, updated 0, rejected 0" in result.stdout
    # --format overrides an extension that says nothing
    path.rename(tmp_path / "events.log")
    again = nudgeflow("events", "import", "events.log", "--format", "jsonl")
    assert again.returncode == 0, again.stderr
    assert "imported 0, updated 0, rejected 0; unchanged 2" in again.stdout


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("absent.csv", None, "error: absent.csv: no such file"),
        ("members.xml", b"<members/>", "error: members.xml: unknown format"),
        (
            "members.csv",
            b"member_id,email\nm1,z\xf6e@example.com\n",
            "error: members.csv:2: not UTF-8",
        ),
        ("members.csv", b"member_id,first_name\nm1,Ann\n", "missing required column 'email'"),
    ],
)
def test_unreadable_files_exit_2_and_import_nothing(
    nudgeflow: Nudgeflow, tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    if content is not None:
        (tmp_path / name).write_bytes(content)
    result = nudgeflow("members", "import", name)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_error_exits_2(nudgeflow: Nudgeflow) -> None:
    result = nudgeflow("events", "import")
    assert result.returncode == 2
    assert "Missing argument" in result.stderr
