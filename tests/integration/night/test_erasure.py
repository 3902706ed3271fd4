"""Forgetting a member (``night.erasure``) on SQLite and PostgreSQL, after a real night's
dispatch to the file outbox: no trace of their email, names or address is left in any
table (the SQLite file's bytes included) or outbox file; the ledger verifies; impact and
the ledger statement are unchanged; a second forget changes nothing; the subject-access
export holds everything before and is refused after."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from night.access_export import subject_access
from night.erasure import ErasureBlocked, forget_member
from night.impact import impact_report
from nudgeflow.errors import NotFoundError
from store import ledger
from store.erasure import list_receipts
from store.inbox import store_request
from store.ledger.statement import statement
from store.schema import actions, events, forgotten_refs, members, runs
from tests.integration import nights
from tests.integration.night.test_dispatch import (
    AS_OF,
    SIGNING_KEY,
    World,
    close_world,
    make_world,
    prepare,
    verify_ok,
)

GIFT = """
id: gift
name: Gift
priority: 50
audience: {tags: {any_of: [gift]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: gift, item: a mug, item_cost: "5.00 USD"}
budget: {total: "100.00 USD"}
email: {template: nudge, subject: "A mug for you, {{ member.first_name }} {{ member.last_name }}"}
response: {counts_as: [email_clicked], within: 7d}
"""
EMAIL = "Ada.Lovelace@Example.org"
SECRETS = ("ada.lovelace@example.org", "Lovelace", "12 Analytical Row", "N1 9GU")
ADDRESS = {
    "address_line1": "12 Analytical Row",
    "city": "London",
    "postal_code": "N1 9GU",
    "country": "GB",
}
OTHER_ADDRESS = {
    "address_line1": "7 Difference Lane",
    "city": "London",
    "postal_code": "SE1 7PB",
    "country": "GB",
}
NOW = datetime(2026, 5, 5, 9, 0, tzinfo=UTC)


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    built = make_world(db_url, tmp_path)
    (built.campaigns_dir / "gift.yaml").write_text(GIFT)
    yield built
    close_world(built)


def _name_ada(connection: sa.Connection) -> None:
    """gift-0 becomes Ada, with an address; credit-0 and gift-1 get a name and another
    address."""
    connection.execute(
        sa.update(members)
        .where(members.c.member_id == "gift-0")
        .values(
            email=EMAIL,
            first_name="Ada",
            last_name="Lovelace",
            birth_year=1815,
            birth_month=12,
            birth_day=10,
            attributes=ADDRESS | {"favourite": "engines"},
            stripe_customer_id="cus_ada",
        )
    )
    connection.execute(
        sa.update(members)
        .where(members.c.member_id.in_(["credit-0", "gift-1"]))
        .values(first_name="Charles", last_name="Babbage", attributes=OTHER_ADDRESS)
    )


def _mentions(connection: sa.Connection) -> None:
    """Ada's own event properties, another member's event naming her, and inbox requests:
    a SendGrid batch with one event of hers, an ingestion batch identifying her."""
    pks = dict(connection.execute(sa.select(members.c.member_id, members.c.id)).all())
    connection.execute(
        sa.insert(events),
        [
            {
                "event_id": "ada-note",
                "member_pk": pks["gift-0"],
                "type": "review_posted",
                "occurred_at": 1_777_000_000,
                "properties": {"text": "I love it, Ada Lovelace", "phone": "+44 20 0000"},
            },
            {
                "event_id": "referral",
                "member_pk": pks["plain-0"],
                "type": "referral_made",
                "occurred_at": 1_777_000_100,
                "properties": {"referred": "ada.lovelace@example.org", "channel": "email"},
            },
        ],
    )
    sendgrid = [
        {"email": "ada.lovelace@example.org", "event": "open", "sg_event_id": "sg1"},
        {"email": "plain-0@example.com", "event": "open", "sg_event_id": "sg2"},
    ]
    store_request(connection, "sendgrid", json.dumps(sendgrid), 1_777_000_200)
    ingest = {
        "items": [
            {
                "type": "identify",
                "key": "identify:1",
                "record": {"member_id": "gift-0", "email": EMAIL, "last_name": "Lovelace"}
                | ADDRESS,
            },
            {"type": "track", "record": {"member_id": "plain-0", "type": "login"}},
        ]
    }
    store_request(connection, "ingest", json.dumps(ingest), 1_777_000_300)
    connection.execute(
        sa.insert(runs).values(
            as_of=AS_OF,
            kind="nightly",
            status="failed",
            started_at=datetime(2026, 5, 3),
            error="SendGrid refused ada.lovelace@example.org: mailbox full",
            summary={"problems": ["a1: Ada Lovelace <ada.lovelace@example.org> bounced"]},
        )
    )


def _dispatched(world: World) -> None:
    app = world.app()
    prepare(
        world, app, {"gift": ["gift-0", "gift-1"], "credit": ["credit-0"], "plain": ["plain-0"]}
    )
    with app.engine.begin() as connection:
        _name_ada(connection)
        _mentions(connection)
    run = nights.dispatch(app, AS_OF)
    assert run.totals().get("sent") == 4, run.totals()


def _figures(world: World) -> tuple[object, object]:
    app = world.app()
    report = impact_report(app.engine, start=None, end=None, currency="USD")
    with app.engine.connect() as connection:
        month = statement(connection, AS_OF.year, AS_OF.month)
    return report, month


def _dump(world: World, engine: sa.Engine, *, files: bool = True) -> str:
    """Every text value of every table (the file's bytes too on SQLite), and every file in
    the outbox, as one lowercase text to search."""
    parts: list[str] = []
    if files and engine.dialect.name == "sqlite":
        path = Path(str(engine.url.database))
        for suffix in ("", "-wal", "-journal"):
            file = path.with_name(path.name + suffix)
            if file.exists():
                parts.append(file.read_bytes().decode("latin-1"))
    with engine.connect() as connection:
        for table in sorted(sa.inspect(connection).get_table_names()):
            rows = connection.execute(sa.text(f"SELECT * FROM {table}"))
            parts.extend(sorted("\t".join(str(value) for value in row) for row in rows))
    parts.extend(p.read_text(errors="replace") for p in world.outbox_dir.rglob("*") if p.is_file())
    return "\n".join(parts).lower()


def _forget(world: World, member_id: str = "gift-0") -> object:
    app = world.app()
    return forget_member(
        app.engine,
        member_id,
        signing_key=SIGNING_KEY,
        outbox_dir=world.outbox_dir,
        erased_by="dpo@shop",
        reason="ticket 42",
        clock=lambda: NOW,
    )


def test_forget_leaves_no_trace_and_keeps_the_books(world: World) -> None:
    _dispatched(world)
    app = world.app()
    before = _dump(world, app.engine)
    for secret in SECRETS:
        assert secret.lower() in before, secret  # the test would notice a trace
    figures = _figures(world)

    done = _forget(world)

    assert not done.already  # type: ignore[attr-defined]
    after = _dump(world, app.engine)
    for secret in SECRETS:
        assert secret.lower() not in after, secret
    assert "charles" in after and "plain-0@example.com" in after  # others are untouched
    verify_ok(app)
    assert _figures(world) == figures
    with app.engine.connect() as connection:
        kept = connection.execute(
            sa.select(sa.func.count()).select_from(actions).where(actions.c.state == "sent")
        ).scalar_one()
        referral = connection.execute(
            sa.select(events.c.properties).where(events.c.event_id == "referral")
        ).scalar_one()
        refs = connection.execute(sa.select(forgotten_refs.c.kind)).scalars().all()
        (receipt,) = list_receipts(connection)
    assert kept == 4
    assert referral == {"referred": "[erased]", "channel": "email"}
    assert sorted(refs) == ["email", "member_id"]
    assert receipt.erased_by == "dpo@shop" and receipt.reason == "ticket 42"
    assert receipt.removed["outbox_files"] == 1
    assert receipt.removed["gift_addresses"] == 1
    assert receipt.removed["inbox_items"] == 2
    assert receipt.removed["other_members_event_properties"] == 1
    assert receipt.removed["run_records"] == 1
    assert "lovelace" not in json.dumps(receipt.removed).lower()


def test_forget_twice_changes_nothing_and_export_is_refused_after(world: World) -> None:
    _dispatched(world)
    app = world.app()
    first = _forget(world)
    dump = _dump(world, app.engine, files=False)
    again = _forget(world)
    assert again.already and again.receipt == first.receipt  # type: ignore[attr-defined]
    assert _dump(world, app.engine, files=False) == dump
    with pytest.raises(NotFoundError, match="was forgotten on 2026-05-05"):
        subject_access(app.engine, "gift-0", signing_key=SIGNING_KEY, now=NOW)
    with pytest.raises(NotFoundError, match="no member with member_id 'nobody'"):
        _forget(world, "nobody")


def test_export_holds_everything_about_one_member(world: World) -> None:
    _dispatched(world)
    app = world.app()
    document = subject_access(app.engine, "gift-0", signing_key=SIGNING_KEY, now=NOW)
    text = json.dumps(document)
    assert json.loads(text) == document  # plain JSON throughout
    assert document["member"]["email"] == EMAIL
    assert document["member"]["attributes"]["address_line1"] == "12 Analytical Row"
    assert {e["event_id"] for e in document["events"]} >= {"ada-note"}
    (action,) = document["actions"]
    assert action["campaign_id"] == "gift" and action["state"] == "sent"
    assert document["emails_sent"][0]["action_id"] == action["action_id"]
    (gift,) = document["gifts"]
    assert gift["address_line1"] == "12 Analytical Row" and gift["cost_minor"] == 500
    (reward,) = document["rewards"]
    assert reward["amount_minor"] == 500
    assert [t["kind"] for t in document["ledger"]["transactions"]] == ["reserve", "issue"]
    assert document["email_consent"]["given"] is True
    kinds = sorted(item["kind"] for item in document["inbox"])
    assert kinds == ["ingest", "sendgrid"]
    for found in document["inbox"]:
        assert len(found["items"]) == 1  # only the items about her, not plain-0's
    assert document["events"][0]["occurred_at"].endswith("Z")
    assert "plain-0" not in text


def test_forget_fails_planned_actions_and_waits_for_dispatch(world: World) -> None:
    app = world.app()
    planned = prepare(world, app, {"credit": ["credit-0"], "plain": ["plain-0"]})
    with app.engine.begin() as connection:
        connection.execute(
            sa.update(actions)
            .where(actions.c.action_id == planned["credit-0"])
            .values(state="reserved")
        )
    with pytest.raises(ErasureBlocked, match="1 reserved"):
        _forget(world, "credit-0")
    done = _forget(world, "plain-0")
    assert done.receipt.removed["planned_actions_failed"] == 1  # type: ignore[attr-defined]
    with app.engine.connect() as connection:
        state = connection.execute(
            sa.select(actions.c.state).where(actions.c.action_id == planned["plain-0"])
        ).scalar_one()
    assert state == "failed"
    with ledger.ledger_transaction(app.engine) as connection:
        assert ledger.verify(connection).ok
