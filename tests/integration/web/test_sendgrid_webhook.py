"""SendGrid's Signed Event Webhook, driven the way SendGrid drives it (a signed POST from the
fake's key pair), on SQLite and PostgreSQL: each event takes effect once, and a refused
request stores nothing."""

from __future__ import annotations

import pytest

from store.consent import consent_of
from tests.integration.web.hooks_world import (
    STAMP,
    World,
    all_events,
    events_of,
    inbox_rows,
    opted_in,
    serve,
    world,
)

__all__ = ["world"]


def test_a_signed_batch_is_stored_then_worked_into_member_events(world: World) -> None:
    ada, bob = world.action_ids["ada"], world.action_ids["bob"]
    sign = world.signer
    batch = [
        sign.event("delivered", ada, timestamp=STAMP - 60),
        sign.event("open", ada, timestamp=STAMP - 30),
        sign.event("click", bob, timestamp=STAMP - 10, url="https://example.com/offer"),
        sign.event("processed", ada),  # not one we act on
        sign.event("open", None),  # not one of our emails
        sign.event("open", "f" * 32),  # an action we do not know
    ]
    body, headers = sign.request(batch, STAMP)
    with serve(world.app()) as client:
        response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 6}
    assert inbox_rows(world.engine) == [("sendgrid", "pending")]
    assert all_events(world.engine) == []  # stored before the answer, worked after

    worked = world.work()
    assert worked.done == 1 and worked.failed == 0
    assert worked.effects == {"email events recorded": 3}
    assert worked.skipped == {
        "not an event we act on": 1,
        "no action_id": 1,
        "unknown action": 1,
    }
    assert inbox_rows(world.engine) == [("sendgrid", "done")]
    found = events_of(world.engine, "email_delivered", "email_opened", "email_clicked")
    assert found == [
        ("ada", "email_delivered", {"action_id": ada, "campaign_id": "welcome"}),
        ("ada", "email_opened", {"action_id": ada, "campaign_id": "welcome"}),
        (
            "bob",
            "email_clicked",
            {"action_id": bob, "campaign_id": "welcome", "url": "https://example.com/offer"},
        ),
    ]


def test_the_same_batch_delivered_three_times_takes_effect_once(world: World) -> None:
    ada = world.action_ids["ada"]
    batch = [world.signer.event(kind, ada) for kind in ("delivered", "open", "bounce")]
    with serve(world.app(), inbox_worker=True) as client:
        for attempt in range(3):  # SendGrid signs each delivery anew
            body, headers = world.signer.request(batch, STAMP + attempt)
            assert client.post("/webhooks/sendgrid", content=body, headers=headers).is_success
    world.work()  # whatever the service's worker left
    assert inbox_rows(world.engine) == [("sendgrid", "done")] * 3
    types = [t for _, t, _ in events_of(world.engine, "email_delivered", "email_opened")]
    assert types == ["email_delivered", "email_opened"]
    bounced = events_of(world.engine, "email_bounced")
    assert [(member, kind) for member, kind, _ in bounced] == [("ada", "email_bounced")]
    assert bounced[0][2]["sendgrid_event"] == "bounce"
    with world.engine.connect() as connection:
        assert consent_of(connection, "ada").withdrawn_by == "email_bounced"
        assert consent_of(connection, "bob").given


def test_withdrawals_spam_reports_and_unsubscribes(world: World) -> None:
    ada, bob = world.action_ids["ada"], world.action_ids["bob"]
    batch = [
        world.signer.event("spamreport", ada),
        world.signer.event("group_unsubscribe", bob, asm_group_id=1),
        world.signer.event("unsubscribe", bob),
    ]
    body, headers = world.signer.request(batch, STAMP)
    with serve(world.app()) as client:
        assert client.post("/webhooks/sendgrid", content=body, headers=headers).is_success
        assert client.post("/webhooks/sendgrid", content=body, headers=headers).is_success
    world.work()
    assert [t for _, t, _ in events_of(world.engine, "email_spam_report")] == ["email_spam_report"]
    unsubscribed = events_of(world.engine, "unsubscribed")
    assert unsubscribed == [
        ("bob", "unsubscribed", {"campaign_id": "welcome", "source": "sendgrid"})
    ]
    assert not opted_in(world.engine, "bob")
    assert opted_in(world.engine, "ada")  # a spam report withdraws by its event alone
    with world.engine.connect() as connection:
        assert consent_of(connection, "ada").withdrawn_by == "email_spam_report"


def test_an_unsubscribe_redelivered_after_a_restore_does_not_withdraw_again(
    world: World,
) -> None:
    from store.consent import restore_consent

    bob = world.action_ids["bob"]
    body, headers = world.signer.request([world.signer.event("unsubscribe", bob)], STAMP)
    with serve(world.app()) as client:
        assert client.post("/webhooks/sendgrid", content=body, headers=headers).is_success
        world.work()
        with world.engine.begin() as connection:
            restore_consent(
                connection, "bob", at=world.clock(), by="ops", reason="asked", source="cli"
            )
        assert client.post("/webhooks/sendgrid", content=body, headers=headers).is_success
        world.work()
    assert opted_in(world.engine, "bob")
    assert len(events_of(world.engine, "unsubscribed")) == 1


FORGERIES = ["forged", "unsigned", "stale", "future", "other key", "not base64", "tampered"]


@pytest.mark.parametrize("case", FORGERIES)
def test_refused_requests_get_401_and_store_nothing(world: World, case: str) -> None:
    from tests.fakes.sendgrid_api import EventWebhookSigner

    batch = [world.signer.event("bounce", world.action_ids["ada"])]
    body, headers = world.signer.request(batch, STAMP)
    if case == "forged":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = world.signer.sign(b"[]", STAMP)[
            "X-Twilio-Email-Event-Webhook-Signature"
        ]
    elif case == "unsigned":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    elif case == "stale":
        body, headers = world.signer.request(batch, STAMP - 301)
    elif case == "future":
        body, headers = world.signer.request(batch, STAMP + 301)
    elif case == "other key":
        body, headers = EventWebhookSigner().request(batch, STAMP)
    elif case == "not base64":
        headers["X-Twilio-Email-Event-Webhook-Signature"] = "%%%not base64%%%"
    elif case == "tampered":
        body = body.replace(b"bounce", b"open!!")
    with serve(world.app()) as client:
        response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]
    assert inbox_rows(world.engine) == []


def test_a_replay_within_five_minutes_is_stored_but_changes_nothing(world: World) -> None:
    batch = [world.signer.event("open", world.action_ids["ada"])]
    body, headers = world.signer.request(batch, STAMP)
    with serve(world.app()) as client:
        for _ in range(2):
            assert client.post("/webhooks/sendgrid", content=body, headers=headers).is_success
    result = world.work()
    assert result.done == 2
    assert result.effects == {"email events recorded": 1, "repeated": 1}
    assert len(events_of(world.engine, "email_opened")) == 1


def test_the_signature_window_follows_the_services_clock(world: World) -> None:
    body, headers = world.signer.request([], STAMP - 290)
    with serve(world.app()) as client:
        assert client.post("/webhooks/sendgrid", content=body, headers=headers).is_success
        world.clock.now = world.clock.now.replace(second=45)  # 15 s later: 305 s old
        response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 401
    assert "stale" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[{", "malformed JSON"),
        (b'{"event": "open"}', "array"),
        (b"[1, 2]", "array"),
        (b"[NaN]", "malformed JSON"),
        (b"\xff\xfe[]", "UTF-8"),
    ],
)
def test_a_signed_body_that_is_not_a_json_array_is_400(
    world: World, body: bytes, reason: str
) -> None:
    headers = world.signer.sign(body, STAMP)
    with serve(world.app()) as client:
        response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert inbox_rows(world.engine) == []


def test_oversized_bodies_are_413_before_being_read(world: World) -> None:
    app = world.app(web={"max_body_bytes": 2048})
    batch = [world.signer.event("open", world.action_ids["ada"]) for _ in range(40)]
    body, headers = world.signer.request(batch, STAMP)
    assert len(body) > 2048
    sent: list[int] = []

    def stream():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), 512):
            sent.append(start)
            yield body[start : start + 512]

    with serve(app) as client:
        declared = client.post("/webhooks/sendgrid", content=body, headers=headers)
        streamed = client.post("/webhooks/sendgrid", content=stream(), headers=headers)
        lying = client.post(
            "/webhooks/sendgrid",
            content=b"[]",
            headers={**headers, "Content-Length": str(10**12)},
        )
    assert declared.status_code == streamed.status_code == lying.status_code == 413
    assert "limit" in declared.json()["error"]
    assert inbox_rows(world.engine) == []


def test_without_a_public_key_the_endpoint_is_503_with_a_reason(world: World) -> None:
    body, headers = world.signer.request([], STAMP)
    with serve(world.app(sendgrid={})) as client:
        response = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 503
    assert "NUDGEFLOW_SENDGRID__WEBHOOK_PUBLIC_KEY" in response.json()["error"]
    assert inbox_rows(world.engine) == []


def test_the_service_works_its_inbox_within_seconds(world: World) -> None:
    import time

    body, headers = world.signer.request(
        [world.signer.event("open", world.action_ids["ada"])], STAMP
    )
    with serve(world.app(), inbox_worker=True) as client:
        assert client.post("/webhooks/sendgrid", content=body, headers=headers).is_success
        deadline = time.monotonic() + 5
        while inbox_rows(world.engine) != [("sendgrid", "done")]:
            assert time.monotonic() < deadline, "the worker did not work the request"
            time.sleep(0.05)
    assert len(events_of(world.engine, "email_opened")) == 1


def test_a_request_that_cannot_be_stored_is_503_and_sent_again_later(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlalchemy as sa

    from web import intake

    def unreachable(connection: object, requests: object) -> None:
        raise sa.exc.OperationalError("INSERT", {}, Exception("could not connect"))

    body, headers = world.signer.request(
        [world.signer.event("open", world.action_ids["ada"])], STAMP
    )
    with serve(world.app()) as client:
        with monkeypatch.context() as patched:
            patched.setattr(intake, "store_requests", unreachable)  # the commit in a thread
            patched.setattr(intake.InboxAppender, "try_store", unreachable)  # SQLite's on the loop
            refused = client.post("/webhooks/sendgrid", content=body, headers=headers)
        assert refused.status_code == 503
        assert "send it again" in refused.json()["error"]
        assert inbox_rows(world.engine) == []
        # SendGrid retries a 5xx: the same request, once the database is back, is stored.
        again = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert again.status_code == 200
    assert inbox_rows(world.engine) == [("sendgrid", "pending")]
