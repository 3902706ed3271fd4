"""Consent on SQLite and PostgreSQL: an import withdraws it but never restores it (whether an
import, an unsubscribe, a bounce or a spam report withdrew it); only ``restore_consent``
gives it back, recorded with who and why, and the planner and dispatch then agree."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from delivery.tokens import make_unsubscribe_token, read_unsubscribe_token
from delivery.unsubscribe import apply_unsubscribe
from nudgeflow.errors import NotFoundError
from nudgeflow.timeutil import day_end
from planning.campaign_files import load_campaign_set
from store import outbox
from store.consent import consent_of, restore_consent
from store.guard_facts import gather_guards
from store.importer import ImportResult, import_file
from store.schema import actions, events, members
from tests.integration.dispatch_rows import action

ROOT = Path(__file__).resolve().parents[3]
KEY = "test-key"
WITHDRAWN_AT = datetime(2026, 11, 21, 10, 30, tzinfo=UTC)
RESTORED_AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
BEFORE, AFTER = date(2026, 11, 21), date(2026, 11, 22)  # nights before and after the restore


def import_members(engine: sa.Engine, tmp_path: Path, rows: str) -> ImportResult:
    path = tmp_path / "members.csv"
    path.write_text("member_id,email,first_name,email_opt_in\n" + rows)
    return import_file(engine, "members", path)


def keys(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as connection:
        query = sa.select(members.c.member_id, members.c.id)
        return {member_id: pk for member_id, pk in connection.execute(query)}


def planner_consent(engine: sa.Engine, as_of: date) -> dict[str, bool]:
    found = load_campaign_set(ROOT / "campaigns")
    campaign = found.campaigns[0]
    pks = keys(engine)
    end = day_end(as_of, ZoneInfo("UTC"))
    with engine.connect() as connection:
        states, _ = gather_guards(
            connection, [campaign], {campaign.id: list(pks.values())}, found.policy, as_of, end
        )
    return {member: states[pk].consent for member, pk in sorted(pks.items())}


def dispatch_consent(engine: sa.Engine) -> dict[str, bool]:
    """What dispatch reads just before sending, for a planned action of each member."""
    pks = keys(engine)
    with engine.begin() as connection:
        connection.execute(sa.delete(actions))
        rows = [action(pks, "c", member, AFTER, "planned") for member in sorted(pks)]
        connection.execute(sa.insert(actions), rows)
        loaded = outbox.load(connection, [row["action_id"] for row in rows], now=RESTORED_AT)
    by_pk = {pk: member for member, pk in pks.items()}
    return {by_pk[a.member_pk]: a.consent for a in loaded}


def opt_in(engine: sa.Engine) -> dict[str, bool]:
    with engine.connect() as connection:
        query = sa.select(members.c.member_id, members.c.email_opt_in)
        return {member_id: bool(value) for member_id, value in connection.execute(query)}


def unsubscribe(engine: sa.Engine, member_id: str, at: datetime = WITHDRAWN_AT) -> bool:
    token = read_unsubscribe_token(make_unsubscribe_token(KEY, member_id, "c"), KEY)
    with engine.begin() as connection:
        return apply_unsubscribe(connection, token, at=at).already


def restore(engine: sa.Engine, member_id: str, at: datetime = RESTORED_AT) -> bool:
    with engine.begin() as connection:
        _before, restored = restore_consent(
            connection, member_id, at=at, by="alice", reason="asked by phone", source="cli"
        )
    return restored


def test_an_import_never_restores_consent_an_import_withdrew(
    engine: sa.Engine, tmp_path: Path
) -> None:
    import_members(engine, tmp_path, "ann,ann@example.com,Ann,false\nbob,bob@example.com,Bob,\n")
    again = import_members(
        engine, tmp_path, "ann,ann@example.com,Annie,true\nbob,bob@example.com,Bob,true\n"
    )
    assert (again.updated, again.unchanged, again.consent_kept) == (1, 1, 1)
    assert "; consent kept withdrawn for 1 (rows with email_opt_in=true" in again.summary()
    assert opt_in(engine) == {"ann": False, "bob": True}
    with engine.connect() as connection:
        first_name = connection.execute(
            sa.select(members.c.first_name).where(members.c.member_id == "ann")
        ).scalar()
    assert first_name == "Annie"  # the rest of the row is imported
    assert planner_consent(engine, AFTER) == {"ann": False, "bob": True}
    assert dispatch_consent(engine) == {"ann": False, "bob": True}
    # Withdrawing by import still works.
    import_members(engine, tmp_path, "bob,bob@example.com,Bob,no\n")
    assert opt_in(engine) == {"ann": False, "bob": False}


def test_an_import_never_restores_consent_an_event_withdrew(
    engine: sa.Engine, tmp_path: Path
) -> None:
    rows = "ann,ann@example.com,Ann,true\nbob,bob@example.com,Bob,true\ncat,cat@example.com,Cat,\n"
    import_members(engine, tmp_path, rows)
    unsubscribe(engine, "ann")
    bounces = tmp_path / "events.csv"
    bounces.write_text(
        "event_id,member_id,type,occurred_at\n"
        "b1,bob,email_bounced,2026-11-21T10:30:00Z\n"
        "r1,cat,consent_restored,2026-11-21T11:00:00Z\n"  # an import may not restore either
    )
    refused = import_file(engine, "events", bounces)
    assert (refused.imported, refused.rejected) == (1, 1)
    assert [(p.line, p.field) for p in refused.problems] == [(3, "type")]

    again = import_members(engine, tmp_path, rows)
    assert again.consent_kept == 2  # ann (unsubscribed), bob (bounced)
    assert opt_in(engine) == {"ann": False, "bob": True, "cat": True}
    assert planner_consent(engine, AFTER) == {"ann": False, "bob": False, "cat": True}
    assert dispatch_consent(engine) == {"ann": False, "bob": False, "cat": True}


def test_a_restore_gives_consent_back_with_who_and_why(engine: sa.Engine, tmp_path: Path) -> None:
    rows = "ann,ann@example.com,Ann,false\nbob,bob@example.com,Bob,true\ncat,cat@example.com,Cat,\n"
    import_members(engine, tmp_path, rows)
    unsubscribe(engine, "bob")
    with engine.connect() as connection:
        before = consent_of(connection, "bob")
    assert (before.given, before.withdrawn_by, before.restored) == (False, "unsubscribed", None)

    assert (restore(engine, "ann"), restore(engine, "bob"), restore(engine, "cat")) == (
        True,
        True,
        False,  # cat had consent: nothing to restore, nothing recorded
    )
    with engine.connect() as connection:
        recorded = connection.execute(
            sa.select(members.c.member_id, events.c.occurred_at, events.c.properties)
            .join(members, members.c.id == events.c.member_pk)
            .where(events.c.type == "consent_restored")
            .order_by(members.c.member_id)
        ).all()
        after = consent_of(connection, "bob")
    assert [(r[0], r[2]["withdrawn_by"]) for r in recorded] == [
        ("ann", "email_opt_in"),
        ("bob", "unsubscribed"),
    ]
    assert recorded[0][2] | {"withdrawn_by": None} == {
        "by": "alice",
        "reason": "asked by phone",
        "source": "cli",
        "withdrawn_by": None,
    }
    assert after.given and after.restored is not None
    assert (after.restored.by, after.restored.reason, after.restored.at) == (
        "alice",
        "asked by phone",
        RESTORED_AT,
    )
    assert opt_in(engine) == {"ann": True, "bob": True, "cat": True}
    assert planner_consent(engine, AFTER) == {"ann": True, "bob": True, "cat": True}
    assert dispatch_consent(engine) == {"ann": True, "bob": True, "cat": True}
    # The night before the restore still saw bob's unsubscribe (ann's row says true now).
    assert planner_consent(engine, BEFORE) == {"ann": True, "bob": False, "cat": True}
    # Restored members are counted as unchanged by the next import of the same rows.
    again = import_members(engine, tmp_path, rows.replace("false", "true"))
    assert (again.unchanged, again.consent_kept) == (3, 0)


def test_consent_withdrawn_again_after_a_restore(engine: sa.Engine, tmp_path: Path) -> None:
    import_members(engine, tmp_path, "ann,ann@example.com,Ann,\n")
    assert unsubscribe(engine, "ann") is False
    assert unsubscribe(engine, "ann") is True  # the second click changes nothing
    restore(engine, "ann")
    later = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    assert unsubscribe(engine, "ann", at=later) is False  # a new unsubscribe, a new event
    with engine.connect() as connection:
        kinds = connection.execute(
            sa.select(events.c.type).order_by(events.c.occurred_at)
        ).scalars()
        assert list(kinds) == ["unsubscribed", "consent_restored", "unsubscribed"]
        state = consent_of(connection, "ann")
    assert (state.given, state.withdrawn_by) == (False, "unsubscribed")
    assert planner_consent(engine, date(2026, 11, 23)) == {"ann": False}
    assert planner_consent(engine, AFTER) == {"ann": False}  # email_opt_in is false again
    assert import_members(engine, tmp_path, "ann,ann@example.com,Ann,true\n").consent_kept == 1


def test_a_restore_covers_a_withdrawal_stamped_after_it(engine: sa.Engine, tmp_path: Path) -> None:
    import_members(engine, tmp_path, "ann,ann@example.com,Ann,\n")
    bounce = tmp_path / "events.csv"
    bounce.write_text("event_id,member_id,type,occurred_at\nb1,ann,email_bounced,2027-01-01\n")
    assert import_file(engine, "events", bounce).imported == 1
    assert restore(engine, "ann") is True  # the clock says 2026-11-22
    with engine.connect() as connection:
        assert consent_of(connection, "ann").given
    assert dispatch_consent(engine) == {"ann": True}


def test_an_unknown_member_is_not_found(engine: sa.Engine) -> None:
    with engine.begin() as connection, pytest.raises(NotFoundError, match="ghost"):
        restore_consent(connection, "ghost", at=RESTORED_AT, by="a", reason="b", source="cli")
