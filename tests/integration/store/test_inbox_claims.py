"""``store.inbox.claim_done``: the inbox worker's claim, on SQLite and PostgreSQL. Only rows
still pending are claimed (marked done, an attempt each); a rollback leaves them pending;
on PostgreSQL a second worker passes by the rows a first one holds instead of waiting."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from store.inbox import claim_done, store_request
from store.schema import inbox

AT = 1_764_460_800


def _rows(engine: sa.Engine, count: int) -> list[int]:
    with engine.begin() as connection:
        return [store_request(connection, "sendgrid", "[]", AT) for _ in range(count)]


def _states(engine: sa.Engine) -> dict[int, tuple[str, int, int | None]]:
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(inbox.c.id, inbox.c.state, inbox.c.attempts, inbox.c.processed_at)
        )
        return {row_id: (state, attempts, at) for row_id, state, attempts, at in found}


def test_only_pending_rows_are_claimed_and_marked_done(engine: sa.Engine) -> None:
    first, second, third = _rows(engine, 3)
    with engine.begin() as connection:
        connection.execute(sa.update(inbox).where(inbox.c.id == second).values(state="failed"))
        assert claim_done(connection, [first, second, third, 999], AT + 5) == {first, third}
        assert claim_done(connection, [first, third], AT + 6) == set()  # done already
    assert _states(engine) == {
        first: ("done", 1, AT + 5),
        second: ("failed", 0, None),
        third: ("done", 1, AT + 5),
    }


def test_a_rolled_back_claim_leaves_the_rows_pending(engine: sa.Engine) -> None:
    ids = _rows(engine, 2)
    with engine.connect() as connection, connection.begin() as transaction:
        assert claim_done(connection, ids, AT) == set(ids)
        transaction.rollback()  # the effects failed
    assert {state for state, _, _ in _states(engine).values()} == {"pending"}


@pytest.mark.postgres
def test_a_second_worker_passes_by_the_rows_a_first_one_holds(engine: sa.Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's")
    first, second, third = _rows(engine, 3)
    with engine.connect() as one, engine.connect() as two, one.begin():
        assert claim_done(one, [first, second], AT) == {first, second}  # held, uncommitted
        with two.begin():
            two.exec_driver_sql("SET LOCAL lock_timeout = '1s'")  # waiting would fail
            assert claim_done(two, [first, second, third], AT) == {third}
