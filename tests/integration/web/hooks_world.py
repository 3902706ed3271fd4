"""The world of the webhook and ingestion tests: two members with an action each, the
service on them (``create_app`` around an ``App`` on the test database, its clock moved by
the test), SendGrid's signer and the ingestion key; and what the tests read back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from bootstrap.app import App, build_app
from inbound.inbox import WorkResult, work_inbox
from settings import AppSettings
from store.schema import actions, events, inbox, members
from tests.fakes.sendgrid_api import EventWebhookSigner
from tests.integration.community import Person, insert_people
from tests.integration.dispatch_rows import action
from web.app import create_app

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
STAMP = int(NOW.timestamp())
INGEST_KEY = "ingest-test-key-0123456789abcdef"
OLD_KEY = "ingest-old-key-fedcba9876543210"
AS_OF = date(2026, 11, 20)
UTC_ZONE = ZoneInfo("UTC")


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class World:
    engine: sa.Engine
    db_url: str
    keys: dict[str, int]  # member_id → pk
    action_ids: dict[str, str]  # member_id → its action id
    signer: EventWebhookSigner
    clock: Clock

    def app(self, **settings: Any) -> App:
        values: dict[str, Any] = {
            "database_url": self.db_url,
            "signing_key": "hooks-test-signing-key-0123456789abcdef",
            "campaigns_dir": str(ROOT / "campaigns"),
            "timezone": "UTC",
            "sendgrid": {"webhook_public_key": self.signer.public_key},
            "stripe": {"webhook_secret": "whsec_test_secret_0123456789"},
            "ingest": {"api_keys": f"{OLD_KEY},{INGEST_KEY}"},
            **settings,
        }
        return build_app(AppSettings(_env_file=None, **values), self.clock)  # type: ignore[call-arg]

    def work(self) -> WorkResult:
        """Work the inbox as another process would (the night, ``nudgeflow inbox work``)."""
        return work_inbox(self.engine, UTC_ZONE, self.clock)


@pytest.fixture
def world(db_url: str, engine: sa.Engine) -> World:
    with engine.begin() as connection:
        keys = insert_people(connection, [Person("ada", None), Person("bob", None)])
        rows = [
            action(keys, "welcome", member_id, AS_OF, "sent", sent_at=datetime(2026, 11, 20, 22))
            for member_id in keys
        ]
        connection.execute(sa.insert(actions), rows)
    ids = {member_id: row["action_id"] for member_id, row in zip(keys, rows, strict=True)}
    return World(engine, db_url, keys, ids, EventWebhookSigner(), Clock())


@contextmanager
def serve(app: App, *, inbox_worker: bool = False) -> Iterator[TestClient]:
    """A client of the service. The worker is off unless asked for: the tests work the
    inbox themselves, so they see what the request alone stored."""
    with TestClient(create_app(lambda: app, inbox_worker=inbox_worker)) as client:
        yield client
    app.engine.dispose()


def inbox_rows(engine: sa.Engine) -> list[tuple[str, str]]:
    """(kind, state) of every inbox row, oldest first."""
    with engine.connect() as connection:
        rows = connection.execute(sa.select(inbox.c.kind, inbox.c.state).order_by(inbox.c.id)).all()
    return [(str(kind), str(state)) for kind, state in rows]


def events_of(engine: sa.Engine, *types: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(member_id, type, properties) of every event of ``types``, in insertion order."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(members.c.member_id, events.c.type, events.c.properties)
            .join(members, members.c.id == events.c.member_pk)
            .where(events.c.type.in_(types))
            .order_by(events.c.id)
        ).all()
    return [(str(m), str(t), dict(p or {})) for m, t, p in rows]


def all_events(engine: sa.Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(events.c.event_id, events.c.type, events.c.member_pk).order_by(
                events.c.event_id
            )
        ).all()
    return [tuple(row) for row in rows]


def opted_in(engine: sa.Engine, member_id: str) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.execute(
                sa.select(members.c.email_opt_in).where(members.c.member_id == member_id)
            ).scalar_one()
        )
