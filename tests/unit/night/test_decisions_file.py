"""A decisions file (``approvals list --csv`` with its decision column filled in): every bad
row is reported with its line at once and nothing is decided; empty decisions are skipped;
a spreadsheet's formula guard on an id is undone."""

from __future__ import annotations

from pathlib import Path

import pytest

from night.approvals import DECISION_COLUMNS, DecisionFileError, parse_decisions, read_decisions

HEADER = ",".join(DECISION_COLUMNS)


def _row(action_id: str, decision: str = "", reason: str = "") -> str:
    values = dict.fromkeys(DECISION_COLUMNS, "x")
    values.update(action_id=action_id, decision=decision, reason=reason)
    return ",".join(values[c] for c in DECISION_COLUMNS)


def test_approvals_rejections_and_empty_rows() -> None:
    decisions = parse_decisions(
        [
            HEADER,
            _row("a1", "approve"),
            _row("a2", "Reject", "over budget"),
            _row("a3"),
            _row("'a4", "approved"),
            _row("a5", " yes "),
        ],
        "f.csv",
    )
    assert decisions.approve == ["a1", "a4", "a5"]
    assert decisions.reject == {"a2": "over budget"}


def test_every_bad_row_is_reported_with_its_line() -> None:
    with pytest.raises(DecisionFileError) as caught:
        parse_decisions(
            [
                HEADER,
                _row("a1", "maybe"),
                _row("a2", "reject"),
                _row("a3", "approve"),
                _row("a3", "reject", "changed my mind"),
                _row("", "approve"),
            ],
            "f.csv",
        )
    assert str(caught.value).splitlines() == [
        "f.csv line 2: decision 'maybe': use approve, reject or leave it empty",
        "f.csv line 3: rejecting a2 needs a reason in the reason column",
        "f.csv line 5: action a3 is decided on line 4 too",
        "f.csv line 6: no action_id",
        "nothing decided",
    ]
    assert DecisionFileError.exit_code == 2


def test_a_file_without_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id,verdict\na1,approve\n", encoding="utf-8")
    with pytest.raises(DecisionFileError, match="no action_id or decision column"):
        read_decisions(path)
    with pytest.raises(DecisionFileError, match="cannot be read"):
        read_decisions(tmp_path / "missing.csv")
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DecisionFileError, match="cannot be read"):
        read_decisions(path)
