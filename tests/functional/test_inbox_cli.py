"""``nudgeflow inbox`` through the console script: the status an operator reads, working the
backlog now, and putting failed requests back."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from store.engine import create_store_engine
from store.inbox import store_request
from store.migrate import upgrade
from store.schema import inbox
from tests.functional.runner import Nudgeflow

RECEIVED = 1_795_000_000


def stored(home: Path, *rows: tuple[str, str]) -> None:
    """Requests the service accepted and did not work (it stopped)."""
    engine = create_store_engine(f"sqlite:///{home / 'nudgeflow.db'}")
    upgrade(engine)
    with engine.begin() as connection:
        for kind, body in rows:
            store_request(connection, kind, body, RECEIVED)  # type: ignore[arg-type]
    engine.dispose()


def states(home: Path) -> list[str]:
    engine = create_store_engine(f"sqlite:///{home / 'nudgeflow.db'}")
    with engine.connect() as connection:
        found = list(connection.execute(sa.select(inbox.c.state).order_by(inbox.c.id)).scalars())
    engine.dispose()
    return found


def test_status_work_and_retry(nudgeflow: Nudgeflow) -> None:
    home = nudgeflow.cwd
    unknown_action = [{"event": "open", "action_id": "f" * 32, "sg_event_id": "e1"}]
    stored(home, ("sendgrid", json.dumps(unknown_action)), ("sendgrid", '"not a batch"'))

    status = nudgeflow("inbox")
    assert status.returncode == 0, status.stderr
    assert "sendgrid  2        0     0" in status.stdout
    assert "oldest pending: received 2026-11-18 11:06:40 UTC (" in status.stdout

    for _ in range(4):  # the bad request fails each time, and stays pending
        worked = nudgeflow("inbox", "work")
        assert worked.returncode == 0, worked.stderr
    assert states(home) == ["done", "pending"]
    assert "1 requests failed this time and stay pending" in worked.stderr
    last = nudgeflow("inbox", "work")
    assert last.returncode == 1
    assert "problem: row 2 (sendgrid) failed: ValueError: inbox row 2: not a JSON array" in (
        last.stderr
    )
    assert "Traceback" not in last.stderr

    status = nudgeflow("inbox")
    assert "sendgrid  0        1     1" in status.stdout
    assert "nothing pending" in status.stdout
    assert "failed: row 2 (sendgrid) after 5 attempts" in status.stderr

    retried = nudgeflow("inbox", "retry")
    assert retried.returncode == 0
    assert retried.stdout.strip() == "1 failed requests are pending again"
    assert states(home) == ["done", "pending"]


def test_work_says_what_it_did(nudgeflow: Nudgeflow) -> None:
    events = [
        {"event": "open", "action_id": "f" * 32, "sg_event_id": "e1"},
        {"event": "processed", "sg_event_id": "e2"},
    ]
    stored(nudgeflow.cwd, ("sendgrid", json.dumps(events)))
    worked = nudgeflow("inbox", "work")
    assert worked.returncode == 0, worked.stderr
    assert worked.stdout.splitlines() == [
        "worked 1 requests",
        "skipped events: 1 not an event we act on, 1 unknown action",
    ]
