"""The Stripe fake speaks Stripe: the real client's encoding, objects, errors, idempotency,
pagination and rate limiting."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
import stripe

from tests.fakes.stripe_api import StripeFake, parse_form


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    with StripeFake() as server:
        server.add_customer("cus_1")
        yield server


@pytest.fixture
def client(fake: StripeFake) -> Iterator[stripe.StripeClient]:
    session = requests.Session()
    yield stripe.StripeClient(
        "sk_test_fake",
        base_addresses={"api": fake.url},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=0.5, session=session),
    )
    session.close()


def test_nested_form_keys() -> None:
    pairs = [("metadata[a]", "1"), ("promotion[coupon]", "c"), ("types[0]", "x"), ("types[1]", "y")]
    assert parse_form(pairs) == {
        "metadata": {"a": "1"},
        "promotion": {"coupon": "c"},
        "types": ["x", "y"],
    }
    assert parse_form([("created[gte]", "5"), ("list[]", "a"), ("list[]", "b")]) == {
        "created": {"gte": "5"},
        "list": ["a", "b"],
    }


def test_objects_and_idempotency(fake: StripeFake, client: stripe.StripeClient) -> None:
    params = {"id": "c1", "percent_off": 10.0, "duration": "once", "metadata": {"k": "v"}}
    first = client.v1.coupons.create(params, {"idempotency_key": "key-1"})  # type: ignore[arg-type]
    again = client.v1.coupons.create(params, {"idempotency_key": "key-1"})  # type: ignore[arg-type]
    assert first.id == again.id == "c1" and first.object == "coupon"
    assert first.livemode is False and isinstance(first.created, int)
    assert len(fake.coupons) == 1
    changed = {**params, "percent_off": 20.0}
    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        client.v1.coupons.create(changed, {"idempotency_key": "key-1"})  # type: ignore[arg-type]
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.coupons.retrieve("nope")
    assert (missing.value.code, missing.value.http_status) == ("resource_missing", 404)
    fake.forget_idempotency_keys()
    with pytest.raises(stripe.InvalidRequestError, match="already exists"):
        client.v1.coupons.create(params, {"idempotency_key": "key-1"})  # type: ignore[arg-type]


def test_unauthorised_requests_are_refused(fake: StripeFake) -> None:
    answer = requests.get(f"{fake.url}/v1/customers/cus_1", timeout=5)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "api_key_invalid"


def test_lists_page_newest_first(fake: StripeFake, client: stripe.StripeClient) -> None:
    for n in range(5):
        client.v1.customers.balance_transactions.create(
            "cus_1", {"amount": -n - 1, "currency": "usd"}
        )
    first = client.v1.customers.balance_transactions.list("cus_1", {"limit": 3})
    assert first.has_more and len(first.data) == 3
    rest = client.v1.customers.balance_transactions.list(
        "cus_1", {"limit": 3, "starting_after": first.data[-1].id}
    )
    assert not rest.has_more
    amounts = [t.amount for t in [*first.data, *rest.data]]
    assert amounts == [-5, -4, -3, -2, -1]
    assert fake.customers["cus_1"]["balance"] == -15


def test_rate_limit_answers_429_with_headers(fake: StripeFake, client: stripe.StripeClient) -> None:
    fake.set_rate_limit(2)
    statuses = []
    waits = []
    for _ in range(4):
        try:
            client.v1.customers.retrieve("cus_1")
            statuses.append(200)
        except stripe.RateLimitError as exc:
            statuses.append(429)
            waits.append(float((exc.headers or {}).get("Retry-After", 0)))
    assert statuses[:2] == [200, 200] and 429 in statuses
    assert waits and all(wait > 0 for wait in waits)
    time.sleep(0.6)
    client.v1.customers.retrieve("cus_1")


def test_faults_and_events(fake: StripeFake, client: stripe.StripeClient) -> None:
    fake.fail_next("503")
    with pytest.raises(stripe.APIError):
        client.v1.customers.retrieve("cus_1")
    fake.fail_next("timeout", delay=1.0)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.retrieve("cus_1")
    fake.fail_next("reset")
    with pytest.raises(stripe.APIConnectionError):
        client.v1.customers.retrieve("cus_1")
    assert [r.status for r in fake.requests] == [503, None, None]

    client.v1.coupons.create({"id": "c", "amount_off": 500, "currency": "usd"})
    promo = client.v1.promotion_codes.create(
        {
            "promotion": {"type": "coupon", "coupon": "c"},
            "code": "ABC",
            "customer": "cus_1",
            "max_redemptions": 1,
        }
    )
    discount = fake.apply_promotion_code(promo.id)
    fake.pay_invoice("cus_1", {discount["id"]: 500})
    listed = client.v1.events.list({"types": ["invoice.paid", "customer.discount.created"]})
    assert [e.type for e in listed.data] == ["invoice.paid", "customer.discount.created"]
    assert client.v1.promotion_codes.retrieve(promo.id).active is False  # used up
