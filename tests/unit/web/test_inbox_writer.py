"""The webhooks' group commit: requests that arrive while a transaction commits are stored
together in the next one, each answered only after it committed; a failed transaction fails
every request in it; shutdown waits for the flush under way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bootstrap.app import App, build_app
from settings import load_settings
from store.schema import inbox
from web import intake
from web.intake import InboxWriter


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    built = build_app(load_settings(database_url=f"sqlite:///{tmp_path / 'inbox.db'}"))
    yield built
    built.engine.dispose()


def _stored(app: App) -> list[str]:
    with app.engine.connect() as connection:
        return list(connection.execute(sa.select(inbox.c.body).order_by(inbox.c.id)).scalars())


def test_requests_arriving_during_a_commit_share_the_next_one(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    real = intake.store_requests

    def counting(connection: Any, requests: Any) -> None:
        batches.append(len(requests))
        time.sleep(0.2)  # a slow commit: the others arrive while it is under way
        real(connection, requests)

    monkeypatch.setattr(intake, "store_requests", counting)
    commits: list[int] = []
    writer = InboxWriter(app, after_commit=lambda: commits.append(1))

    async def arrive() -> None:
        # The first request starts a commit; the 49 arriving meanwhile wait for the next.
        first = asyncio.create_task(writer.store("sendgrid", "[0]", 1_800_000_000))
        await asyncio.sleep(0.05)
        await asyncio.gather(
            *(writer.store("sendgrid", f"[{n}]", 1_800_000_000) for n in range(1, 50))
        )
        await first
        await writer.drain()

    asyncio.run(arrive())
    assert batches == [1, 49]
    assert commits == [1, 1]  # the worker is woken once per commit
    assert _stored(app) == [f"[{n}]" for n in range(50)]


def test_a_failed_transaction_fails_every_request_in_it_and_stores_none(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(connection: Any, requests: Any) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(intake, "store_requests", failing)
    writer = InboxWriter(app, after_commit=lambda: None)

    async def arrive() -> list[Any]:
        return await asyncio.gather(
            *(writer.store("stripe", "{}", 1_800_000_000) for _ in range(3)),
            return_exceptions=True,
        )

    outcomes = asyncio.run(arrive())
    assert all(isinstance(o, sa.exc.OperationalError) for o in outcomes)
    assert _stored(app) == []


def test_a_request_whose_client_left_is_stored_and_the_rest_answered(app: App) -> None:
    writer = InboxWriter(app, after_commit=lambda: None)

    async def arrive() -> None:
        first = asyncio.create_task(writer.store("sendgrid", "[1]", 1_800_000_000))
        gone = asyncio.create_task(writer.store("sendgrid", "[2]", 1_800_000_000))
        await asyncio.sleep(0)
        gone.cancel()  # the client hung up while its request waited for the commit
        await first
        await writer.drain()

    asyncio.run(arrive())
    assert _stored(app) == ["[1]", "[2]"]
