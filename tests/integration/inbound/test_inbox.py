"""Working the inbox on SQLite and PostgreSQL: nothing accepted is lost when the process
stops between storing and working, nothing is doubled when a row is worked again, and a bad
row costs only itself."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

import inbound.inbox as inbox_module
from store.inbox import inbox_status, retry_failed, store_request
from store.schema import inbox
from tests.integration.web.hooks_world import (
    STAMP,
    World,
    all_events,
    events_of,
    inbox_rows,
    serve,
    world,
)

__all__ = ["world"]


def test_a_crash_between_storing_and_working_loses_nothing(world: World) -> None:
    ada = world.action_ids["ada"]
    body, headers = world.signer.request([world.signer.event("open", ada)], STAMP)
    # The service stores and answers, then stops before its worker ran (no worker at all).
    with serve(world.app()) as client:
        assert client.post("/webhooks/sendgrid", content=body, headers=headers).is_success
    assert inbox_rows(world.engine) == [("sendgrid", "pending")]
    assert all_events(world.engine) == []
    # Restarted: the service's worker works the backlog it finds at start-up.
    with serve(world.app(), inbox_worker=True):
        pass  # the lifespan's shutdown waits for the worker's batch
    assert inbox_rows(world.engine) == [("sendgrid", "done")]
    assert len(events_of(world.engine, "email_opened")) == 1


def test_working_a_row_again_doubles_nothing(world: World) -> None:
    ada = world.action_ids["ada"]
    events = [world.signer.event(kind, ada) for kind in ("delivered", "open", "click")]
    with world.engine.begin() as connection:
        first = store_request(connection, "sendgrid", json.dumps(events), STAMP)
    assert world.work().done == 1
    before = all_events(world.engine)
    # As if the process had died after the effects but before "done" was seen by another
    # worker: the row is pending again and is worked a second time.
    with world.engine.begin() as connection:
        connection.execute(sa.update(inbox).where(inbox.c.id == first).values(state="pending"))
    again = world.work()
    assert again.done == 1 and again.effects == {"repeated": 3}
    assert all_events(world.engine) == before


def test_rows_are_worked_together_even_with_numbers_a_fast_parser_refuses(world: World) -> None:
    # The worker parses a transaction's bodies in one call (orjson); a body with a number
    # beyond a double (valid JSON, accepted by the service) is parsed the slower way with
    # the rest of its transaction.
    ada = world.action_ids["ada"]
    with world.engine.begin() as connection:
        for kind in ("delivered", "open"):
            body = json.dumps([world.signer.event(kind, ada)])
            store_request(connection, "sendgrid", body, STAMP)
        huge = {**world.signer.event("click", ada, url="https://example.com"), "n": 0}
        text = json.dumps([huge]).replace('"n": 0', '"n": 1e400')
        store_request(connection, "sendgrid", text, STAMP)
    result = world.work()
    assert (result.done, result.retrying, result.failed) == (3, 0, 0)
    assert result.effects == {"email events recorded": 3}
    assert len(events_of(world.engine, "email_delivered", "email_opened", "email_clicked")) == 3


def test_rows_another_worker_claims_while_events_are_mapped_are_left_to_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The events are mapped before the write transaction (outside SQLite's write lock);
    # a row another worker claims meanwhile is not applied a second time.
    ada, bob = world.action_ids["ada"], world.action_ids["bob"]
    with world.engine.begin() as connection:
        taken = store_request(
            connection, "sendgrid", json.dumps([world.signer.event("open", ada)]), STAMP
        )
        store_request(connection, "sendgrid", json.dumps([world.signer.event("open", bob)]), STAMP)
    mapped = inbox_module.prepare_sendgrid_events

    def mapped_while_another_claims(connection: Any, batches: Any) -> Any:
        prepared = mapped(connection, batches)
        if len(batches) == 2:  # the other worker claims and works the first row now
            with world.engine.begin() as other:
                done = {"state": "done", "attempts": 1}
                other.execute(sa.update(inbox).where(inbox.c.id == taken).values(**done))
        return prepared

    monkeypatch.setattr(inbox_module, "prepare_sendgrid_events", mapped_while_another_claims)
    result = world.work()
    assert (result.done, result.effects) == (1, {"email events recorded": 1})
    assert [member for member, _, _ in events_of(world.engine, "email_opened")] == ["bob"]


def test_a_bad_row_fails_after_five_attempts_and_blocks_nothing(world: World) -> None:
    ada = world.action_ids["ada"]
    good = json.dumps([world.signer.event("open", ada)])
    with world.engine.begin() as connection:
        store_request(connection, "sendgrid", good, STAMP)
        bad = store_request(connection, "sendgrid", '{"not": "an array"}', STAMP)
        store_request(connection, "ingest", "not json at all", STAMP)
        later = json.dumps([world.signer.event("click", ada, url="https://example.com")])
        store_request(connection, "sendgrid", later, STAMP)
    first = world.work()
    assert (first.done, first.retrying, first.failed) == (2, 2, 0)
    assert len(events_of(world.engine, "email_opened", "email_clicked")) == 2
    for _ in range(3):
        assert world.work().retrying == 2
    last = world.work()
    assert (last.done, last.retrying, last.failed) == (0, 0, 2)
    assert any(f"row {bad} (sendgrid) failed: ValueError" in p for p in last.problems)
    with world.engine.connect() as connection:
        rows = connection.execute(
            sa.select(inbox.c.state, inbox.c.attempts, inbox.c.last_error).order_by(inbox.c.id)
        ).all()
        status = inbox_status(connection)
    assert [(state, attempts) for state, attempts, _ in rows] == [
        ("done", 1),
        ("failed", 5),
        ("failed", 5),
        ("done", 1),
    ]
    assert "not a JSON array of objects" in rows[1].last_error
    assert status.counts == {
        ("sendgrid", "done"): 2,
        ("sendgrid", "failed"): 1,
        ("ingest", "failed"): 1,
    }
    assert status.oldest_pending is None
    assert world.work().done == 0  # failed rows wait for an operator
    with world.engine.begin() as connection:
        assert retry_failed(connection) == 2
        assert inbox_status(connection).total("pending") == 2
