"""Stripe's webhooks, posted the way Stripe posts them (signed by the fake with the
endpoint's secret, the same event objects ``/v1/events`` lists), on SQLite and PostgreSQL:
a redemption arriving by webhook and again by ``stripe sync`` is counted once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from night.rewards import sync_stripe
from providers.stripe_api import StripeApi
from providers.stripe_reads import EVENT_TYPES
from store.ledger.tables import ledger_transactions
from store.reward_tables import rewards
from store.schema import events
from tests.fakes.stripe_api import StripeFake
from tests.integration.providers.test_stripe_issuer import action, insert_member, make_api
from tests.integration.providers.test_stripe_sync import issue
from tests.integration.web.hooks_world import UTC_ZONE, World, inbox_rows, serve, world

__all__ = ["world"]


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    with StripeFake() as server:
        server.add_customer("cus_m1")
        yield server


@pytest.fixture
def api(fake: StripeFake) -> Iterator[StripeApi]:
    made = make_api(fake)
    yield made
    made.close()


def redeemed(engine: sa.Engine, action_id: str) -> tuple[str, int, int]:
    """The reward's state, its ``reward_redeemed`` events and its ledger redeems."""
    with engine.connect() as connection:
        state = connection.execute(
            sa.select(rewards.c.state).where(rewards.c.action_id == action_id)
        ).scalar_one()
        events_count = connection.execute(
            sa.select(sa.func.count()).where(events.c.type == "reward_redeemed")
        ).scalar_one()
        redeems = connection.execute(
            sa.select(sa.func.count()).where(
                ledger_transactions.c.action_id == action_id, ledger_transactions.c.kind == "redeem"
            )
        ).scalar_one()
    return str(state), int(events_count), int(redeems)


def redemption(world: World, fake: StripeFake, api: StripeApi) -> list[str]:
    """A reward issued through Stripe, its code applied and an invoice paid: the event ids."""
    member = insert_member(world.engine)
    issued = issue(world.engine, api, member, 1)
    discount = fake.apply_promotion_code(issued.provider_ref)
    fake.pay_invoice("cus_m1", {discount["id"]: 1234})
    return [event["id"] for event in fake.events if event["type"] in EVENT_TYPES]


@pytest.mark.parametrize("webhook_first", [True, False])
def test_a_redemption_by_webhook_and_by_sync_is_counted_once(
    world: World, fake: StripeFake, api: StripeApi, webhook_first: bool
) -> None:
    event_ids = redemption(world, fake, api)
    app = world.app(stripe={"webhook_secret": fake.webhook_secret})
    if not webhook_first:
        assert sync_stripe(world.engine, api, UTC_ZONE).redeemed == 1
    with serve(app) as client:
        for event_id in event_ids:
            body, headers = fake.signed_webhook(event_id)
            response = client.post("/webhooks/stripe", content=body, headers=headers)
            assert response.status_code == 200, response.text
            assert response.json() == {"accepted": 1}
    worked = world.work()
    assert worked.done == 2 and worked.failed == 0
    if webhook_first:
        assert worked.effects == {"discounts linked": 1, "redemptions recorded": 1}
        assert sync_stripe(world.engine, api, UTC_ZONE).redeemed == 0
    else:
        assert worked.effects == {}
    assert redeemed(world.engine, action(1)) == ("redeemed", 1, 1)
    assert inbox_rows(world.engine) == [("stripe", "done"), ("stripe", "done")]


def test_the_same_webhook_twice_is_counted_once(
    world: World, fake: StripeFake, api: StripeApi
) -> None:
    event_ids = redemption(world, fake, api)
    with serve(world.app(stripe={"webhook_secret": fake.webhook_secret})) as client:
        for event_id in event_ids + event_ids:
            body, headers = fake.signed_webhook(event_id)
            assert client.post("/webhooks/stripe", content=body, headers=headers).is_success
    assert world.work().done == 4
    assert redeemed(world.engine, action(1)) == ("redeemed", 1, 1)


@pytest.mark.parametrize("case", ["forged", "unsigned", "stale", "tampered", "garbage header"])
def test_refused_stripe_requests_get_401_and_store_nothing(
    world: World, fake: StripeFake, api: StripeApi, case: str
) -> None:
    [first, _] = redemption(world, fake, api)
    body, headers = fake.signed_webhook(first)
    if case == "forged":
        body, headers = fake.signed_webhook(first, secret="whsec_someone_else")
    elif case == "unsigned":
        del headers["Stripe-Signature"]
    elif case == "stale":  # Stripe's tolerance: 300 s
        body, headers = fake.signed_webhook(first, timestamp=int(time.time()) - 301)
    elif case == "tampered":
        body = body.replace(b"customer.discount.created", b"invoice.paid")
    elif case == "garbage header":
        headers["Stripe-Signature"] = "nonsense"
    with serve(world.app(stripe={"webhook_secret": fake.webhook_secret})) as client:
        response = client.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["error"]
    assert inbox_rows(world.engine) == []


def test_events_we_do_not_act_on_are_answered_and_not_stored(
    world: World, fake: StripeFake
) -> None:
    event_id = fake.emit("customer.created", {"id": "cus_x", "object": "customer"})
    body, headers = fake.signed_webhook(event_id)
    with serve(world.app(stripe={"webhook_secret": fake.webhook_secret})) as client:
        response = client.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"ignored": "customer.created"}
    assert inbox_rows(world.engine) == []


def test_a_signed_body_that_is_not_json_is_400(world: World, fake: StripeFake) -> None:
    import hashlib
    import hmac

    body = b"{not json"
    stamp = int(time.time())
    mac = hmac.new(fake.webhook_secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
    headers = {"Stripe-Signature": f"t={stamp},v1={mac.hexdigest()}"}
    with serve(world.app(stripe={"webhook_secret": fake.webhook_secret})) as client:
        response = client.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 400
    assert "malformed JSON" in response.json()["error"]
    assert inbox_rows(world.engine) == []


def test_without_a_secret_the_endpoint_is_503(world: World, fake: StripeFake) -> None:
    event_id = fake.emit("invoice.paid", {"id": "in_x"})
    body, headers = fake.signed_webhook(event_id)
    with serve(world.app(stripe={})) as client:
        response = client.post("/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 503
    assert "NUDGEFLOW_STRIPE__WEBHOOK_SECRET" in response.json()["error"]
    assert inbox_rows(world.engine) == []
