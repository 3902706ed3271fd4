"""The ingestion API (Segment's shape) on SQLite and PostgreSQL: keys, the import's checks
item by item, messageId de-duplication, and what ends up stored."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from night.erasure import forget_member
from store.schema import members
from tests.integration.web.hooks_world import (
    INGEST_KEY,
    OLD_KEY,
    World,
    all_events,
    events_of,
    inbox_rows,
    opted_in,
    serve,
    world,
)

__all__ = ["world"]
AUTH = {"Authorization": f"Bearer {INGEST_KEY}"}


def track(user: str = "ada", **extra: Any) -> dict[str, Any]:
    return {
        "userId": user,
        "event": "purchase",
        "timestamp": "2026-11-21T09:00:00Z",
        "messageId": f"msg-{user}-1",
        "properties": {"amount": "12.50", "currency": "eur", "sku": "A1"},
        **extra,
    }


def member(engine: sa.Engine, member_id: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        row = connection.execute(sa.select(members).where(members.c.member_id == member_id)).first()
    return None if row is None else dict(row._mapping)


def test_track_stores_the_event_once_per_message_id(world: World) -> None:
    with serve(world.app()) as client:
        first = client.post("/api/v1/track", json=track(), headers=AUTH)
        again = client.post("/api/v1/track", json=track(), headers=AUTH)
    assert first.status_code == again.status_code == 200
    assert first.json() == {"accepted": 1, "rejected": 0, "errors": []}
    assert inbox_rows(world.engine) == [("ingest", "done")] * 2  # worked before the answer
    [(who, kind, properties)] = events_of(world.engine, "purchase")
    assert (who, kind, properties) == ("ada", "purchase", {"sku": "A1"})
    with world.engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT event_id, amount_minor, currency, occurred_at FROM events")
        ).one()
    assert tuple(row) == ("msg-ada-1", 1250, "EUR", 1_795_251_600)


def test_a_batch_mixing_good_and_bad_items_reports_each_rejected_one(world: World) -> None:
    batch = [
        {"type": "identify", "userId": "cy", "traits": {"email": "cy@example.com", "plan": "pro"}},
        {**track("cy"), "type": "track"},  # identified just before: accepted
        {**track("dee"), "type": "track"},  # nobody knows dee
        {"type": "track", "userId": "ada", "event": "purchase", "timestamp": "yesterday"},
        {"type": "page", "userId": "ada", "name": "Home"},
        "not an object",
        {"type": "identify", "userId": "eve", "traits": {"email": "not an address"}},
        {"type": "track", "userId": "bob", "event": "consent_restored", "messageId": "m-x"},
        {"type": "track", "event": "purchase", "anonymousId": "anon-1"},
        {
            **track("bob", messageId="m-bob"),
            "type": "track",
            "properties": {"amount": "-3", "currency": "USD"},
        },
        {**track("bob", messageId="m-bob-2"), "type": "track"},
        {"type": "identify", "userId": "ada", "traits": {"firstName": "Ada", "country": "fr"}},
    ]
    with serve(world.app()) as client:
        response = client.post("/api/v1/batch", json={"batch": batch}, headers=AUTH)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["accepted"], report["rejected"]) == (4, 8)
    reasons = {error["index"]: error["reason"] for error in report["errors"]}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 9]
    assert reasons[2] == "userId: unknown member 'dee' (identify them first)"
    assert reasons[3].startswith("timestamp: expected an ISO 8601")
    assert reasons[4] == "type: expected track or identify, got 'page'"
    assert reasons[5] == "item: expected a JSON object"
    assert reasons[6].startswith("traits.email:")
    assert reasons[7].startswith("event: consent_restored is recorded by")
    assert reasons[8].startswith("userId: required")
    assert reasons[9].startswith("properties.amount: a purchase cannot be negative")
    assert [(m, t) for m, t, _ in events_of(world.engine, "purchase")] == [
        ("cy", "purchase"),
        ("bob", "purchase"),
    ]
    cy = member(world.engine, "cy")
    assert cy is not None and cy["email"] == "cy@example.com"
    assert cy["attributes"] == {"plan": "pro"}
    ada = member(world.engine, "ada")
    assert ada is not None
    # A known member may be identified without an email: the stored one is kept.
    assert (ada["email"], ada["first_name"], ada["country"]) == ("ada@example.com", "Ada", "FR")
    assert member(world.engine, "eve") is None and member(world.engine, "dee") is None


def test_identify_takes_effect_once_per_message_id(world: World) -> None:
    first = {"userId": "ada", "messageId": "id-1", "traits": {"firstName": "Ada"}}
    second = {"userId": "ada", "messageId": "id-2", "traits": {"firstName": "Adeline"}}
    with serve(world.app()) as client:
        for body in (first, second, first):  # the first one redelivered late
            assert client.post("/api/v1/identify", json=body, headers=AUTH).status_code == 200
    found = member(world.engine, "ada")
    assert found is not None and found["first_name"] == "Adeline"


def test_an_identify_never_restores_withdrawn_consent(world: World) -> None:
    with world.engine.begin() as connection:
        connection.execute(
            sa.update(members).where(members.c.member_id == "bob").values(email_opt_in=False)
        )
    body = {"userId": "bob", "traits": {"email_opt_in": True}}
    with serve(world.app()) as client:
        assert client.post("/api/v1/identify", json=body, headers=AUTH).status_code == 200
    assert not opted_in(world.engine, "bob")


def test_a_rejected_single_call_is_400_with_the_reason(world: World) -> None:
    with serve(world.app()) as client:
        response = client.post("/api/v1/track", json=track("nobody"), headers=AUTH)
    assert response.status_code == 400
    assert response.json() == {
        "accepted": 0,
        "rejected": 1,
        "errors": [{"index": 0, "reason": "userId: unknown member 'nobody' (identify them first)"}],
    }
    assert inbox_rows(world.engine) == []


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer wrong-key-0123456789abcdef"}, 401),
        ({"Authorization": f"Basic {INGEST_KEY}"}, 401),
        ({"Authorization": "Bearer "}, 401),
        ({"Authorization": f"Bearer {OLD_KEY}"}, 200),  # both keys work during a rotation
        (AUTH, 200),
    ],
)
def test_keys(world: World, headers: dict[str, str], status: int) -> None:
    with serve(world.app()) as client:
        response = client.post("/api/v1/track", json=track(), headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert INGEST_KEY not in response.text
        assert inbox_rows(world.engine) == [] and all_events(world.engine) == []


def test_without_keys_the_api_is_off(world: World) -> None:
    with serve(world.app(ingest={})) as client:
        response = client.post("/api/v1/batch", json={"batch": []}, headers=AUTH)
    assert response.status_code == 503
    assert "NUDGEFLOW_INGEST__API_KEYS" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        ("/api/v1/track", b"{", "malformed JSON"),
        ("/api/v1/track", b"[]", "expected a JSON object"),
        ("/api/v1/batch", b'{"batch": {}}', 'expected {"batch": [...]}'),
        ("/api/v1/batch", b'{"items": []}', 'expected {"batch": [...]}'),
        ("/api/v1/identify", b'{"userId": NaN}', "malformed JSON"),
        ("/api/v1/identify", b"\xff", "not UTF-8"),
    ],
)
def test_bodies_that_are_not_json_or_not_the_shape_are_400(
    world: World, path: str, body: bytes, reason: str
) -> None:
    with serve(world.app()) as client:
        response = client.post(path, content=body, headers=AUTH)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert inbox_rows(world.engine) == []


def test_an_oversized_batch_is_413(world: World) -> None:
    app = world.app(web={"max_body_bytes": 4096})
    batch = [{**track(), "type": "track", "messageId": f"m{n}"} for n in range(100)]
    with serve(app) as client:
        response = client.post("/api/v1/batch", json={"batch": batch}, headers=AUTH)
    assert response.status_code == 413
    assert inbox_rows(world.engine) == []


def test_an_identify_of_a_forgotten_member_is_rejected(world: World, tmp_path: Path) -> None:
    app = world.app()
    forget_member(
        world.engine,
        "ada",
        signing_key=app.settings.signing_key.get_secret_value(),
        outbox_dir=tmp_path,
        erased_by="test",
        reason=None,
        clock=lambda: datetime(2026, 11, 20, tzinfo=UTC),
    )
    body = {"userId": "ada", "traits": {"email": "new-ada@example.com", "firstName": "Ada"}}
    with serve(app) as client:
        response = client.post("/api/v1/identify", json=body, headers=AUTH)
    assert response.status_code == 400
    reason = response.json()["errors"][0]["reason"]
    assert reason.startswith("userId: this member_id belongs to a member forgotten on 2026-11-20")
    assert member(world.engine, "ada") is None
