"""The webhooks' group commit: the requests that arrive together are stored in one
transaction, each answered only after it committed; on SQLite the loop commits itself when
no other writer holds the lock, and otherwise hands the batch to a thread that waits its
turn; a failed transaction fails every request in it; shutdown waits for the flush."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bootstrap.app import App, build_app
from settings import load_settings
from store.engine import sqlite_write_turn
from store.schema import inbox
from web import intake
from web.intake import Answer, InboxWriter, Keep

AT = 1_800_000_000


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    built = build_app(load_settings(database_url=f"sqlite:///{tmp_path / 'inbox.db'}"))
    yield built
    built.engine.dispose()


def _stored(app: App) -> list[str]:
    with app.engine.connect() as connection:
        return list(connection.execute(sa.select(inbox.c.body).order_by(inbox.c.id)).scalars())


def _writer(app: App, commits: list[int] | None = None) -> InboxWriter:
    return InboxWriter(app.engine, after_commit=lambda: (commits or []).append(1))


def test_requests_arriving_together_are_one_commit_made_on_the_loop(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    monkeypatch.setattr(intake, "store_requests", lambda *a: threads.append("thread"))
    commits: list[int] = []
    writer = InboxWriter(app.engine, after_commit=lambda: commits.append(1))

    async def arrive() -> None:
        await asyncio.gather(*(writer.store("sendgrid", f"[{n}]", AT) for n in range(20)))
        await writer.drain()
        writer.close()

    asyncio.run(arrive())
    assert commits == [1]  # one transaction for the twenty, and the worker woken once
    assert threads == []  # nobody else held the lock: no thread was needed
    assert _stored(app) == [f"[{n}]" for n in range(20)]


def test_while_another_thread_writes_the_batch_waits_in_a_thread_and_the_rest_join_the_next(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request waits in a thread for the turn; the 49 that arrive while its slow
    commit is under way wait for it (SQLite: one batch at a time), then go together, back on
    the loop since nobody holds the lock any more."""
    batches: list[int] = []
    real = intake.store_requests

    def counting(connection: Any, requests: Any) -> None:
        batches.append(len(requests))
        time.sleep(0.2)  # a slow commit: the others arrive while it is under way
        real(connection, requests)

    monkeypatch.setattr(intake, "store_requests", counting)
    commits: list[int] = []
    writer = InboxWriter(app.engine, after_commit=lambda: commits.append(1))
    turn = sqlite_write_turn(app.engine)
    held, release = threading.Event(), threading.Event()

    def other_writer() -> None:  # e.g. the inbox worker, in its write turn
        with turn:
            held.set()
            release.wait(5)

    other = threading.Thread(target=other_writer)
    other.start()
    held.wait(5)

    async def arrive() -> None:
        first = asyncio.create_task(writer.store("sendgrid", "[0]", AT))
        await asyncio.sleep(0.05)
        release.set()  # the thread can take its turn now; the loop never waited for it
        await asyncio.sleep(0.05)
        rest = [writer.store("sendgrid", f"[{n}]", AT) for n in range(1, 50)]
        await asyncio.gather(*rest)
        await first
        await writer.drain()
        writer.close()

    asyncio.run(arrive())
    other.join()
    assert batches == [1]  # in the thread; the 49 were committed on the loop, together
    assert commits == [1, 1]
    assert _stored(app) == [f"[{n}]" for n in range(50)]


def test_another_process_holding_the_lock_does_not_stop_the_loop(app: App, tmp_path: Path) -> None:
    writer = _writer(app)  # the database is migrated first
    other = sqlite3.connect(tmp_path / "inbox.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process (the nightly run) is writing

    async def arrive() -> float:
        stored = asyncio.create_task(writer.store("stripe", "{}", AT))
        started = time.monotonic()
        await asyncio.sleep(0.2)  # the loop is free: this sleep ends on time
        late = time.monotonic() - started
        assert not stored.done()
        other.execute("COMMIT")
        await stored
        await writer.drain()
        writer.close()
        return late

    late = asyncio.run(arrive())
    other.close()
    assert late < 1.0
    assert _stored(app) == ["{}"]


def test_a_failed_transaction_fails_every_request_in_it_and_stores_none(app: App) -> None:
    failing = "CREATE TRIGGER failing BEFORE INSERT ON inbox BEGIN SELECT RAISE(ABORT, 'disk'); END"
    with app.engine.begin() as connection:
        connection.exec_driver_sql(failing)  # the INSERT on the loop fails inside SQLite
    writer = _writer(app)

    async def arrive() -> list[Any]:
        outcomes = await asyncio.gather(
            *(writer.store("stripe", "{}", AT) for _ in range(3)), return_exceptions=True
        )
        writer.close()
        return outcomes

    outcomes = asyncio.run(arrive())
    assert [type(o) for o in outcomes] == [sa.exc.OperationalError] * 3
    with app.engine.begin() as connection:
        connection.exec_driver_sql("DROP TRIGGER failing")
    assert _stored(app) == []
    # The next request is stored: the appender starts again on a fresh connection.
    asyncio.run(_writer(app).store("stripe", "{}", AT))
    assert _stored(app) == ["{}"]


def test_a_failed_transaction_in_the_thread_fails_its_requests_too(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(connection: Any, requests: Any) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(intake, "store_requests", failing)
    monkeypatch.setattr(intake.InboxAppender, "try_store", lambda self, requests: False)
    writer = _writer(app)

    async def arrive() -> list[Any]:
        outcomes = await asyncio.gather(
            *(writer.store("stripe", "{}", AT) for _ in range(3)), return_exceptions=True
        )
        writer.close()
        return outcomes

    outcomes = asyncio.run(arrive())
    assert all(isinstance(o, sa.exc.OperationalError) for o in outcomes)
    assert _stored(app) == []


def test_a_request_whose_client_left_is_stored_and_the_rest_answered(app: App) -> None:
    writer = _writer(app)

    async def arrive() -> None:
        first = asyncio.create_task(writer.store("sendgrid", "[1]", AT))
        gone = asyncio.create_task(writer.store("sendgrid", "[2]", AT))
        await asyncio.sleep(0)
        gone.cancel()  # the client hung up while its request waited for the commit
        await first
        await writer.drain()
        writer.close()

    asyncio.run(arrive())
    assert _stored(app) == ["[1]", "[2]"]


def test_a_refused_request_is_answered_and_not_stored_and_a_large_one_is_checked_too(
    app: App,
) -> None:
    writer = _writer(app)
    checked_on: list[str] = []

    def check(answer: Keep | Answer) -> Any:
        def run() -> Keep | Answer:
            checked_on.append(threading.current_thread().name)
            return answer

        return run

    async def arrive() -> list[Keep | Answer]:
        refused = await writer.submit("sendgrid", AT, check(Answer(401, {"error": "x"})), 10)
        kept = await writer.submit("sendgrid", AT, check(Keep("[big]", {"accepted": 1})), 10**6)
        writer.close()
        return [refused, kept]

    assert asyncio.run(arrive()) == [Answer(401, {"error": "x"}), Keep("[big]", {"accepted": 1})]
    assert checked_on[0] == threading.main_thread().name  # a small body: on the loop
    assert checked_on[1] != threading.main_thread().name  # a large one: in a thread
    assert _stored(app) == ["[big]"]


@pytest.mark.postgres
def test_on_postgresql_up_to_four_batches_commit_at_once(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL commit waits for the server's WAL flush: the batches that arrive
    meanwhile do not queue behind it, up to four in flight."""
    if engine.dialect.name != "postgresql":
        pytest.skip("on SQLite one batch is written at a time (one writer)")
    lock = threading.Lock()
    active, peak = [0], [0]
    real = intake.store_requests

    def slow(connection: Any, requests: Any) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.5)  # the six waves (150 ms) all arrive while the first commit is slow
        real(connection, requests)
        with lock:
            active[0] -= 1

    monkeypatch.setattr(intake, "store_requests", slow)
    commits: list[int] = []
    writer = InboxWriter(engine, after_commit=lambda: commits.append(1))

    async def arrive() -> None:
        stored: list[asyncio.Future[None]] = []
        for wave in range(6):  # six waves 30 ms apart, all while the first commit is slow
            stored += [
                asyncio.ensure_future(writer.store("sendgrid", f"[{wave}, {n}]", AT))
                for n in range(5)
            ]
            await asyncio.sleep(0.03)
        await asyncio.gather(*stored)
        await writer.drain()
        writer.close()

    asyncio.run(arrive())
    assert peak[0] == 4  # four at once, never more
    assert len(commits) == 5  # waves 1-4 alone, waves 5 and 6 together after the first
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(inbox)).scalar() == 30
