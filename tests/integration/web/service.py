"""The service under test: ``web.app.create_app`` around an ``App`` on a test database, with
a clock the test moves, driven by Starlette's TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from bootstrap.app import App, build_app
from settings import AppSettings
from store.schema import events, members
from web.app import create_app

ROOT = Path(__file__).resolve().parents[3]
KEY = "pages-test-signing-key-0123456789abcdef"
NOW = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


def make_app(db_url: str, clock: Clock, **settings: Any) -> App:
    values: dict[str, Any] = {
        "database_url": db_url,
        "signing_key": KEY,
        "campaigns_dir": str(ROOT / "campaigns"),
        "timezone": "UTC",
        **settings,
    }
    return build_app(AppSettings(_env_file=None, **values), clock)  # type: ignore[call-arg]


@contextmanager
def serve(app: App) -> Iterator[TestClient]:
    """A client of the service; never follows redirects (the pages must not send any)."""
    with TestClient(create_app(lambda: app), follow_redirects=False) as client:
        yield client
    app.engine.dispose()


def snapshot(engine: sa.Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every event and every member's consent: what "nothing changed" compares."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(
                events.c.event_id, events.c.type, events.c.member_pk, events.c.properties
            ).order_by(events.c.event_id)
        ).all()
        consent = connection.execute(
            sa.select(members.c.member_id, members.c.email_opt_in, members.c.updated_at).order_by(
                members.c.member_id
            )
        ).all()
    return [tuple(r) for r in rows], [tuple(r) for r in consent]


def events_of(engine: sa.Engine, event_type: str) -> list[tuple[str, dict[str, Any]]]:
    """(member_id, properties) of every event of ``event_type``."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(members.c.member_id, events.c.properties)
            .join(members, members.c.id == events.c.member_pk)
            .where(events.c.type == event_type)
            .order_by(events.c.id)
        ).all()
    return [(str(r[0]), dict(r[1] or {})) for r in rows]


def opted_in(engine: sa.Engine, member_id: str) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.execute(
                sa.select(members.c.email_opt_in).where(members.c.member_id == member_id)
            ).scalar_one()
        )
