"""``nudgeflow actions``, ``runs`` and ``sends export`` through the real console script, on
a SQLite file holding actions in every dispatch state (written directly, no dispatcher)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from store.engine import create_store_engine
from store.migrate import upgrade
from tests.functional.runner import Nudgeflow
from tests.integration.dispatch_rows import insert_dispatched, insert_runs

SENDS_HEADER = (
    "action_id,campaign_id,member_id,state,message_id,reward_ref,as_of,"
    "sending_at,sent_at,finished_at,reason,source_digest,git_commit,campaign_file,"
    "campaign_file_sha256,template_html_sha256,template_text_sha256"
)


@pytest.fixture
def dispatched(tmp_path: Path) -> Path:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'nudgeflow.db'}")
    upgrade(engine)
    with engine.begin() as connection:
        insert_dispatched(connection)
        insert_runs(connection)
    engine.dispose()
    return tmp_path


def test_unknown_actions_as_json(nudgeflow: Nudgeflow, dispatched: Path) -> None:
    result = nudgeflow("actions", "--state", "unknown", "--json")
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [(a["campaign_id"], a["member_id"], a["state"]) for a in listed] == [
        ("winback", "dan", "unknown")
    ]
    assert listed[0]["reason"] == "crashed while sending"
    assert listed[0]["sending_at"] == "2026-06-30T22:02:00.000000+00:00"


def test_actions_table_ends_with_a_count(nudgeflow: Nudgeflow, dispatched: Path) -> None:
    result = nudgeflow("actions", "--campaign", "thanks", "--as-of", "2026-06-30")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip().splitlines()
    assert lines[-1] == "2 actions"
    assert "SendError: 400 invalid address" in result.stdout
    assert "RewardError: card declined" in result.stdout
    assert "winback" not in result.stdout

    limited = nudgeflow("actions", "--member", "ann", "--limit", "1")
    assert limited.stdout.rstrip().splitlines()[-1] == (
        "1 of 3 actions shown (raise --limit to see more)"
    )
    none = nudgeflow("actions", "--member", "nobody")
    assert none.stdout == "0 actions\n"


def test_a_bad_state_is_one_line_and_exit_2(nudgeflow: Nudgeflow, dispatched: Path) -> None:
    result = nudgeflow("actions", "--state", "delivered")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: --state: no state 'delivered'; use one of planned, awaiting_approval, "
        "reserved, reward_issued, sending, sent, held_out, failed, rejected, unknown"
    ]


def test_runs_newest_first_with_counts_and_errors(nudgeflow: Nudgeflow, dispatched: Path) -> None:
    result = nudgeflow("runs")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    body = [r for r in rows if len(r) > 3 and r[0].isdigit()]
    assert [r[:3] for r in body] == [
        ["4", "2026-07-02", "running"],
        ["3", "2026-07-01", "failed"],
        ["2", "2026-06-30", "completed"],
        ["1", "2026-06-29", "completed"],
    ]
    # started, duration, then planned, held out, sent, failed, unknown
    assert body[2][5:] == ["42.5s", "3", "1", "1", "2", "1"]
    assert body[3][5:] == ["2m", "00s", "1"]
    assert "run 3 (2026-07-01) failed: StoreError: the database went away" in result.stdout
    assert result.stdout.rstrip().endswith("4 runs")

    as_json = json.loads(nudgeflow("runs", "--limit", "2", "--json").stdout)
    assert [(r["id"], r["status"], r["duration_seconds"]) for r in as_json] == [
        (4, "running", None),
        (3, "failed", 5400.0),
    ]
    assert as_json[1]["error"] == "StoreError: the database went away"


def test_sends_export_csv(nudgeflow: Nudgeflow, dispatched: Path) -> None:
    result = nudgeflow("sends", "export", "--format", "csv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == SENDS_HEADER
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["campaign_id"], r["member_id"], r["state"]) for r in rows] == [
        ("winback", "dan", "unknown"),
        ("thanks", "ann", "failed"),
        ("winback", "cat", "sent"),
        ("thanks", "cat", "sending"),
    ]
    sent = rows[2]
    assert (sent["message_id"], sent["reward_ref"], sent["as_of"]) == (
        "sg-cat",
        "promo_cat",
        "2026-06-30",
    )
    assert sent["sent_at"] == "2026-06-30T22:06:00.000000+00:00"
    assert rows[0]["sent_at"] == ""


def test_sends_export_filters_to_a_file_and_json(nudgeflow: Nudgeflow, dispatched: Path) -> None:
    out = dispatched / "sends.csv"
    result = nudgeflow(
        "sends",
        "export",
        "--from",
        "2026-06-30",
        "--to",
        "2026-06-30",
        "--campaign",
        "winback",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"exported 2 sends to {out}"
    lines = out.read_text().splitlines()
    assert lines[0] == SENDS_HEADER
    assert [line.split(",")[2] for line in lines[1:]] == ["dan", "cat"]

    as_json = nudgeflow("sends", "export", "--format", "json", "--from", "2026-07-01")
    assert [s["member_id"] for s in json.loads(as_json.stdout)] == ["cat"]

    backwards = nudgeflow("sends", "export", "--from", "2026-07-01", "--to", "2026-06-30")
    assert backwards.returncode == 2
    bad_format = nudgeflow("sends", "export", "--format", "xml")
    assert bad_format.returncode == 2
