"""``nudgeflow approvals`` through the real console script, on a SQLite night whose costly
credits wait for approval: list as a table, JSON and CSV; approve, reject, and decide a
batch from the edited CSV; refusals as one line with the right exit status; ``actions`` and
``why`` show who decided and when; ``approve --dispatch`` sends at once; the ledger verifies."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.functional.runner import Nudgeflow
from tests.integration import nights
from tests.integration.night.test_approvals import COSTLY, POLICY, TRUSTED
from tests.integration.night.test_dispatch import (
    AS_OF,
    SIGNING_KEY,
    World,
    close_world,
    make_world,
    members_for,
    prepare,
    states,
)


@pytest.fixture
def parked(tmp_path: Path) -> tuple[World, dict[str, str]]:
    world = make_world(f"sqlite:///{tmp_path / 'nudgeflow.db'}", tmp_path)
    (world.campaigns_dir / "policy.yaml").write_text(POLICY)
    (world.campaigns_dir / "costly.yaml").write_text(COSTLY)
    (world.campaigns_dir / "trusted.yaml").write_text(TRUSTED)
    app = world.app()
    planned = prepare(world, app, members_for("costly", "credit", n=4))
    nights.dispatch(app, AS_OF)
    close_world(world)
    return world, planned


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow, parked: tuple[World, dict[str, str]]) -> Nudgeflow:
    world, _ = parked
    return nudgeflow.configure(
        cwd=world.root,
        NUDGEFLOW_DATABASE_URL=world.db_url,
        NUDGEFLOW_CAMPAIGNS_DIR=str(world.campaigns_dir),
        NUDGEFLOW_TEMPLATES_DIR=str(world.root / "templates"),
        NUDGEFLOW_TIMEZONE="Europe/Paris",
        NUDGEFLOW_SIGNING_KEY=SIGNING_KEY,
        NUDGEFLOW_EMAIL__OUTBOX_DIR=str(world.outbox_dir),
    )


def test_list_approve_reject_and_decide_a_csv(
    nudgeflow: Nudgeflow, parked: tuple[World, dict[str, str]], tmp_path: Path
) -> None:
    world, planned = parked
    costly = [planned[f"costly-{i}"] for i in range(4)]

    table = nudgeflow("approvals", "list")
    assert table.returncode == 0, table.stderr
    assert all(a in table.stdout for a in costly)
    assert "75.00 USD" in table.stdout and "50.00 USD" in table.stdout
    assert table.stdout.rstrip().endswith("4 approvals")
    listed = json.loads(nudgeflow("approvals", "list", "--json").stdout)
    assert {a["action_id"] for a in listed} == set(costly)
    assert {a["decision"] for a in listed} == {None}

    # one by one
    approved = nudgeflow("approvals", "approve", costly[0], "--by", "finance-ann")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout == f"action {costly[0]}: approved\n"
    no_reason = nudgeflow("approvals", "reject", costly[1])
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    conflict = nudgeflow("approvals", "reject", costly[0], "--reason", "no", "--by", "bob")
    assert conflict.returncode == 1
    assert conflict.stderr.startswith(f"action {costly[0]}: already approved by finance-ann ")
    assert conflict.stderr.rstrip().endswith("not rejected")
    missing = nudgeflow("approvals", "approve", "nope")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no approval for action nope")
    assert "Traceback" not in missing.stderr

    # a batch through the CSV: list --csv, fill the decision column, decide
    out = nudgeflow("approvals", "list", "--csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["action_id"] for r in rows] == [a for a in rows_order(out.stdout) if a]
    assert {r["action_id"] for r in rows} == set(costly[1:])
    for row in rows:
        if row["action_id"] == costly[1]:
            row["decision"] = "reject"
            row["reason"] = "over the quarter's limit"
        elif row["action_id"] == costly[2]:
            row["decision"] = "approve"
    sheet = tmp_path / "decisions.csv"
    with sheet.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    bad = tmp_path / "bad.csv"
    bad.write_text(sheet.read_text().replace("reject", "maybe"), encoding="utf-8")
    refused = nudgeflow("approvals", "decide", str(bad), "--by", "bob")
    assert refused.returncode == 2
    assert "decision 'maybe': use approve, reject or leave it empty" in refused.stderr
    assert "line " in refused.stderr and "Traceback" not in refused.stderr
    decided = nudgeflow("approvals", "decide", str(sheet), "--by", "bob")
    assert decided.returncode == 0, decided.stderr
    assert decided.stdout == (f"action {costly[2]}: approved\naction {costly[1]}: rejected\n")

    app = world.app()
    try:
        now = states(app)
    finally:
        close_world(world)
    assert [now[f"costly-{i}"] for i in range(4)] == [
        "reserved",
        "rejected",
        "reserved",
        "awaiting_approval",
    ]

    # who and when, in actions and why
    shown = json.loads(nudgeflow("actions", "--campaign", "costly", "--json").stdout)
    by_id = {a["action_id"]: a for a in shown}
    assert by_id[costly[0]]["approval"]["decided_by"] == "finance-ann"
    assert by_id[costly[1]]["approval"]["decision"] == "rejected"
    assert by_id[costly[1]]["reason"] == "rejected by bob: over the quarter's limit"
    assert by_id[costly[3]]["approval"]["decision"] is None
    table = nudgeflow("actions", "--campaign", "costly")
    # (a table 120 columns wide when piped: the approval column wraps between words)
    assert "finance-ann" in table.stdout and "waiting" in table.stdout, table.stdout
    why = nudgeflow("why", "costly-1", "--as-of", AS_OF.isoformat())
    assert why.returncode == 0, why.stderr
    words = " ".join(why.stdout.split())  # wrapped at 120 columns when piped
    assert "approvals: costly: action" in words
    assert "rejected by bob" in words and "over the quarter's limit (now rejected)" in words

    # at once: approve --dispatch issues and sends it now
    now_sent = nudgeflow("approvals", "approve", costly[3], "--by", "ann", "--dispatch")
    assert now_sent.returncode == 0, now_sent.stderr
    assert "dispatched now: 1 sent" in now_sent.stdout
    app = world.app()
    try:
        assert states(app)["costly-3"] == "sent"
    finally:
        close_world(world)
    assert nudgeflow("approvals", "list").stdout.strip() == "no rewards are waiting for approval"
    verified = nudgeflow("ledger", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def rows_order(text: str) -> list[str]:
    return [line.split(",")[0] for line in text.splitlines()[1:]]


def test_approve_dispatch_while_a_night_runs_keeps_the_approval(
    nudgeflow: Nudgeflow, parked: tuple[World, dict[str, str]]
) -> None:
    from night.lease import night_lease

    world, planned = parked
    app = world.app()
    try:
        with night_lease(app.engine, AS_OF, app.clock):  # a night is running
            busy = nudgeflow("approvals", "approve", planned["costly-0"], "--dispatch")
        assert busy.returncode == 3, busy.stdout + busy.stderr
        assert busy.stdout == f"action {planned['costly-0']}: approved\n"
        assert len(busy.stderr.strip().splitlines()) == 1 and "Traceback" not in busy.stderr
        assert states(app)["costly-0"] == "reserved"  # approved: the night will send it
    finally:
        close_world(world)
