"""Unsubscribing on SQLite and PostgreSQL: idempotent, and the planner's consent guard then
excludes the member for every campaign."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from delivery.tokens import make_unsubscribe_token, read_unsubscribe_token
from delivery.unsubscribe import apply_unsubscribe
from nudgeflow.errors import NotFoundError
from nudgeflow.timeutil import day_end, to_epoch
from planning.campaign_files import load_campaign_set
from store.guard_facts import gather_guards
from store.schema import events, members
from tests.integration.community import Person, insert_people

ROOT = Path(__file__).resolve().parents[3]
KEY = "test-key"
AS_OF = date(2026, 11, 21)
AT = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)


def _consent(engine: sa.Engine, keys: dict[str, int]) -> dict[str, bool]:
    found = load_campaign_set(ROOT / "campaigns")
    campaign = found.campaigns[0]
    end = day_end(AS_OF, ZoneInfo("UTC"))
    with engine.connect() as connection:
        states, _ = gather_guards(
            connection, [campaign], {campaign.id: list(keys.values())}, found.policy, AS_OF, end
        )
    return {member: states[pk].consent for member, pk in keys.items()}


def test_unsubscribe_is_idempotent_and_withdraws_consent(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        keys = insert_people(connection, [Person("ada", None), Person("bob", None)])
    assert _consent(engine, keys) == {"ada": True, "bob": True}

    token = read_unsubscribe_token(make_unsubscribe_token(KEY, "ada", "loyalist-discount"), KEY)
    with engine.begin() as connection:
        first = apply_unsubscribe(connection, token, at=AT)
    with engine.begin() as connection:
        second = apply_unsubscribe(connection, token, at=AT.replace(hour=11), source="one-click")
    assert (first.already, second.already) == (False, True)
    assert first.member_id == "ada" and first.campaign_id == "loyalist-discount"

    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(events.c.type, events.c.occurred_at, events.c.properties).where(
                events.c.member_pk == keys["ada"]
            )
        ).all()
        query = sa.select(members.c.member_id, members.c.email_opt_in)
        opt_in = {row[0]: row[1] for row in connection.execute(query)}
    assert len(rows) == 1  # the second application added nothing
    kind, occurred_at, properties = rows[0]
    assert kind == "unsubscribed" and occurred_at == to_epoch(AT)
    assert properties == {"campaign_id": "loyalist-discount", "source": "link"}
    assert opt_in == {"ada": False, "bob": True}
    assert _consent(engine, keys) == {"ada": False, "bob": True}


def test_an_event_alone_still_withdraws_consent_after_a_reimport(engine: sa.Engine) -> None:
    """A members import may set email_opt_in back to true; the event keeps consent withdrawn."""
    with engine.begin() as connection:
        keys = insert_people(connection, [Person("ada", None)])
        apply_unsubscribe(
            connection, read_unsubscribe_token(make_unsubscribe_token(KEY, "ada", "c"), KEY), at=AT
        )
        connection.execute(sa.update(members).values(email_opt_in=True))
    assert _consent(engine, keys) == {"ada": False}
    with engine.begin() as connection:
        again = apply_unsubscribe(
            connection, read_unsubscribe_token(make_unsubscribe_token(KEY, "ada", "c"), KEY), at=AT
        )
        assert again.already is False  # the opt-in flag had to be cleared again
        assert connection.execute(sa.select(members.c.email_opt_in)).scalar() is False
        assert connection.execute(sa.select(sa.func.count()).select_from(events)).scalar() == 1


def test_an_unknown_member_is_not_found(engine: sa.Engine) -> None:
    token = read_unsubscribe_token(make_unsubscribe_token(KEY, "ghost", "c"), KEY)
    with engine.begin() as connection, pytest.raises(NotFoundError, match="ghost"):
        apply_unsubscribe(connection, token, at=AT)
