"""The nightly flow works the inbox before it plans; its dry run only reports the backlog."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from bootstrap.app import process_app
from store.consent import consent_of
from store.inbox import store_request
from store.schema import actions, inbox
from tests.integration.community import Person, insert_people
from tests.integration.dispatch_rows import action

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.prefect
NIGHT = date(2026, 5, 1)


@pytest.fixture
def app_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("NUDGEFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("NUDGEFLOW_CAMPAIGNS_DIR", str(ROOT / "campaigns"))
    monkeypatch.setenv("NUDGEFLOW_TIMEZONE", "UTC")
    monkeypatch.setenv("NUDGEFLOW_SIGNING_KEY", "inbox-night-test-key-0123456789")
    monkeypatch.setenv("NUDGEFLOW_EMAIL__OUTBOX_DIR", str(tmp_path / "outbox"))
    process_app.cache_clear()
    yield db_url
    process_app().engine.dispose()
    process_app.cache_clear()


def test_the_night_works_the_inbox_first_and_a_dry_run_only_counts_it(
    prefect_harness: None, app_env: str
) -> None:
    from flows.nightly import nightly

    engine = process_app().engine
    with engine.begin() as connection:
        keys = insert_people(connection, [Person("ann", None)])
        row = action(keys, "welcome", "ann", date(2026, 4, 30), "sent")
        connection.execute(sa.insert(actions), [row])
        bounce = {"event": "bounce", "action_id": row["action_id"], "sg_event_id": "b1"}
        store_request(connection, "sendgrid", json.dumps([bounce]), 1_777_500_000)

    rehearsal = nightly(NIGHT, dry_run=True)
    assert rehearsal["inbox"] == {"pending": 1}
    with engine.connect() as connection:
        assert connection.execute(sa.select(inbox.c.state)).scalar_one() == "pending"
        assert consent_of(connection, "ann").given

    summary = nightly(NIGHT)
    assert summary["inbox"] == {"worked": 1, "failed": 0, "retrying": 0}
    with engine.connect() as connection:
        assert connection.execute(sa.select(inbox.c.state)).scalar_one() == "done"
        assert consent_of(connection, "ann").withdrawn_by == "email_bounced"
