"""Claimed dispatch batches (``store.dispatch_claims``) on SQLite and PostgreSQL: a batch is
claimed by one worker at a time, in order; an expired claim is taken over and says from
whom; a claim taken over can neither be renewed nor finished by its old holder; the round
opens, moves on and closes; and on PostgreSQL two transactions claiming at once get
different batches without waiting for each other (``FOR UPDATE SKIP LOCKED``)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from store import dispatch_claims as claims
from store.runs import finish_run, start_run

AS_OF = date(2026, 11, 28)
NOW = datetime(2026, 11, 29, 2, 0, 0)
TTL = timedelta(seconds=60)


def _run(engine: sa.Engine) -> int:
    with engine.begin() as connection:
        run_id = start_run(connection, AS_OF, "nightly", None, now=NOW)
        claims.open_round(connection, run_id, AS_OF, 0, NOW)
        claims.publish(connection, run_id, 0, [["a1", "a2"], ["a3"], ["a4"]])
    return run_id


def _claim(engine: sa.Engine, run_id: int, holder: str, now: datetime) -> claims.Claim | None:
    with engine.begin() as connection:
        return claims.claim(connection, run_id, holder, now, TTL)


def test_batches_are_claimed_once_each_in_order(engine: sa.Engine) -> None:
    run_id = _run(engine)
    first = _claim(engine, run_id, "w1", NOW)
    second = _claim(engine, run_id, "w2", NOW)
    third = _claim(engine, run_id, "w1", NOW)
    assert first is not None and second is not None and third is not None
    assert [first.action_ids, second.action_ids, third.action_ids] == [["a1", "a2"], ["a3"], ["a4"]]
    assert first.took_over_from is None
    assert _claim(engine, run_id, "w3", NOW + timedelta(seconds=59)) is None  # all held
    with engine.begin() as connection:
        assert claims.open_batches(connection, run_id, 0) == 3
        assert claims.finish(connection, first, {"outcomes": [["c", "sent", 2]]}, NOW)
        assert claims.open_batches(connection, run_id, 0) == 2
        assert claims.results(connection, run_id) == [{"outcomes": [["c", "sent", 2]]}]


def test_an_expired_claim_is_taken_over_and_its_old_holder_cannot_finish(
    engine: sa.Engine,
) -> None:
    run_id = _run(engine)
    dead = _claim(engine, run_id, "dead:1", NOW)
    assert dead is not None
    later = NOW + TTL + timedelta(seconds=1)
    taken = _claim(engine, run_id, "live:2", later)
    assert taken is not None
    assert (taken.batch_no, taken.took_over_from) == (dead.batch_no, "dead:1")
    with engine.begin() as connection:
        assert not claims.renew(connection, dead, later, TTL)
        assert not claims.finish(connection, dead, {}, later)
        assert claims.renew(connection, taken, later, TTL)
        assert claims.finish(connection, taken, {"recovered": 1}, later)
        claims_made = connection.execute(
            sa.text("SELECT claims FROM dispatch_batches WHERE batch_no = 0")
        ).scalar_one()
    assert claims_made == 2


def test_a_heartbeat_keeps_the_claim(engine: sa.Engine) -> None:
    run_id = _run(engine)
    held = _claim(engine, run_id, "w1", NOW)
    assert held is not None
    for beat in range(1, 4):  # three beats, each 50 s after the last
        with engine.begin() as connection:
            assert claims.renew(connection, held, NOW + timedelta(seconds=50 * beat), TTL)
    nearly = NOW + timedelta(seconds=150 + 59)
    assert [c.batch_no for c in iter(lambda: _claim(engine, run_id, "w2", nearly), None)] == [1, 2]


def test_the_round_opens_moves_on_and_closes_cancelling_what_nobody_claimed(
    engine: sa.Engine,
) -> None:
    run_id = _run(engine)
    with engine.begin() as connection:
        state = claims.round_of(connection, run_id)
        assert state is not None and state.opened and not state.closed
        assert claims.running_run(connection, AS_OF) == run_id
        assert claims.running_run(connection, AS_OF, started_after=NOW + TTL) is None
        claims.open_round(connection, run_id, AS_OF, 1, NOW)
        claims.close_round(connection, run_id, NOW)
        state = claims.round_of(connection, run_id)
        assert state is not None and state.closed
        assert claims.open_batches(connection, run_id, 0) == 0
        assert not state.run_alive(NOW)  # no lease held for it
    assert _claim(engine, run_id, "w1", NOW) is None


@pytest.mark.postgres
def test_concurrent_claims_skip_each_others_locked_rows(engine: sa.Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's")
    run_id = _run(engine)
    with engine.connect() as one, engine.connect() as two, one.begin():
        first = claims.claim(one, run_id, "w1", NOW, TTL)  # row locked, uncommitted
        with two.begin():
            # Waits for nothing: the locked batch is skipped, not waited on.
            two.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
            second = claims.claim(two, run_id, "w2", NOW, TTL)
    assert first is not None and second is not None
    assert (first.batch_no, second.batch_no) == (0, 1)


def test_the_batches_of_runs_that_are_over_are_pruned(engine: sa.Engine) -> None:
    over, running = _run(engine), _run(engine)
    with engine.begin() as connection:
        finish_run(connection, over, "completed", now=NOW)
        newest = start_run(connection, AS_OF, "nightly", None, now=NOW)
        assert claims.prune(connection, newest) == 3  # the finished run's three batches
        assert claims.open_batches(connection, running, 0) == 3  # a running run's stay
        assert claims.open_batches(connection, over, 0) == 0
