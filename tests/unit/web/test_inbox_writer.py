"""The webhooks' group commit: requests queued together are stored in one transaction, each
answered only after it committed; a failed transaction fails every request in it; stopping
stores what is queued first."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from bootstrap.app import build_app
from settings import load_settings
from store.schema import inbox
from web import intake
from web.intake import InboxWriter


@pytest.fixture
def app(tmp_path: Path):  # type: ignore[no-untyped-def]
    built = build_app(load_settings(database_url=f"sqlite:///{tmp_path / 'inbox.db'}"))
    yield built
    built.engine.dispose()


def _stored(app) -> list[str]:  # type: ignore[no-untyped-def]
    with app.engine.connect() as connection:
        return list(connection.execute(sa.select(inbox.c.body).order_by(inbox.c.id)).scalars())


def test_requests_queued_together_share_one_transaction(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    batches: list[int] = []
    real = intake.store_requests

    def counting(connection, requests):  # type: ignore[no-untyped-def]
        batches.append(len(requests))
        real(connection, requests)

    monkeypatch.setattr(intake, "store_requests", counting)
    commits: list[int] = []
    writer = InboxWriter(app, after_commit=lambda: commits.append(1))
    # Queued before the thread starts: they all arrived while "a commit was under way".
    futures = [writer.submit("sendgrid", f"[{n}]", 1_800_000_000) for n in range(50)]
    writer.start()
    for future in futures:
        assert future.result(timeout=10) is None
    writer.stop()
    assert batches == [50]
    assert commits == [1]  # the worker is woken once per commit
    assert _stored(app) == [f"[{n}]" for n in range(50)]


def test_a_failed_transaction_fails_every_request_in_it_and_stores_none(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def failing(connection, requests):  # type: ignore[no-untyped-def]
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(intake, "store_requests", failing)
    writer = InboxWriter(app, after_commit=lambda: None)
    futures = [writer.submit("stripe", "{}", 1_800_000_000) for _ in range(3)]
    writer.start()
    for future in futures:
        with pytest.raises(sa.exc.OperationalError):
            future.result(timeout=10)
    writer.stop()
    assert _stored(app) == []


def test_stop_stores_what_is_queued_then_ends_the_thread(app) -> None:  # type: ignore[no-untyped-def]
    writer = InboxWriter(app, after_commit=lambda: None)
    writer.start()
    futures = [writer.submit("sendgrid", "[]", 1_800_000_000) for _ in range(5)]
    writer.stop()
    assert not writer.running
    assert all(future.done() and future.exception() is None for future in futures)
    assert len(_stored(app)) == 5
