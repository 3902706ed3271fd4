"""The Stripe issuer against the Stripe fake, through the real ``stripe`` client: exactly one
object per action through crashes, dropped responses, retries and forgotten keys."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from domain.campaign import Reward
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from providers.recording import RecordingIssuer
from providers.retry import RetryPolicy
from providers.rewards import RewardMember, TransientRewardError, reward_code
from providers.stripe_api import StripeApi
from providers.stripe_issuer import StripeIssuer
from store.reward_tables import rewards
from store.schema import members
from tests.fakes.stripe_api import StripeFake
from tests.unit.providers.test_issuers_local import CAMPAIGN, CREDIT, PERCENT

NOW = datetime.now(UTC).replace(microsecond=0)
MEMBER = RewardMember(member_pk=1, member_id="m1", stripe_customer_id="cus_m1")
FAST = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05)


@pytest.fixture
def fake() -> Iterator[StripeFake]:
    with StripeFake() as server:
        server.add_customer("cus_m1", email="m1@example.com")
        yield server


def make_api(fake: StripeFake, **kwargs: object) -> StripeApi:
    options: dict[str, object] = {
        "retry": FAST,
        "timeout": 0.5,
        "max_requests_per_second": 1000.0,
    }
    options.update(kwargs)
    return StripeApi("sk_test_nudgeflow", fake.url, **options)  # type: ignore[arg-type]


@pytest.fixture
def issuer(fake: StripeFake) -> Iterator[StripeIssuer]:
    made = StripeIssuer(make_api(fake), clock=lambda: NOW)
    yield made
    made.close()


def fresh(fake: StripeFake, clock: datetime = NOW, **kwargs: object) -> StripeIssuer:
    """Another process: no coupon cache, its own connections."""
    return StripeIssuer(make_api(fake, **kwargs), clock=lambda: clock)


def action(n: int) -> str:
    return f"{n:032x}"


def ours(fake: StripeFake, action_id: str) -> list[dict[str, object]]:
    return fake.objects_with_metadata("action_id", action_id)


def test_a_discount_is_a_single_use_code_on_the_campaign_coupon(
    fake: StripeFake, issuer: StripeIssuer
) -> None:
    issued = issuer.issue(action(1), CAMPAIGN, PERCENT, MEMBER)
    assert issued.provider == "stripe"
    assert issued.code == reward_code(action(1))
    [promo] = fake.promotion_codes.values()
    assert issued.provider_ref == promo["id"]
    assert promo["customer"] == "cus_m1"
    assert promo["max_redemptions"] == 1
    assert promo["metadata"] == {"action_id": action(1), "campaign_id": "loyal"}
    assert promo["expires_at"] == int((issued.expires_at or NOW).timestamp())
    [coupon] = fake.coupons.values()
    assert promo["promotion"]["coupon"] == coupon["id"]
    assert coupon["percent_off"] == 15
    assert coupon["duration"] == "once"
    posts = [r for r in fake.requests if r.method == "POST"]
    assert [r.idempotency_key for r in posts] == [
        f"nf-coupon-{coupon['id']}",
        f"nf-{action(1)}-promotion-code",
    ]


def test_issuing_again_finds_the_code_instead_of_creating_one(
    fake: StripeFake, issuer: StripeIssuer
) -> None:
    first = issuer.issue(action(1), CAMPAIGN, PERCENT, MEMBER)
    again = fresh(fake)
    try:
        assert again.issue(action(1), CAMPAIGN, PERCENT, MEMBER) == first
    finally:
        again.close()
    assert len(fake.requests_to("POST", "/v1/promotion_codes")) == 1
    assert len(ours(fake, action(1))) == 1


def test_one_coupon_per_campaign_and_shape(fake: StripeFake, issuer: StripeIssuer) -> None:
    for n in range(3):
        issuer.issue(action(n), CAMPAIGN, PERCENT, MEMBER)
    other = fresh(fake)
    try:
        other.issue(action(3), CAMPAIGN, PERCENT, MEMBER)  # another process: finds it
        fixed = Reward("discount", Money(1000, "USD"), amount_off=Money(1000, "USD"))
        other.issue(action(4), CAMPAIGN, fixed, MEMBER)
    finally:
        other.close()
    assert len(fake.coupons) == 2
    assert len(fake.requests_to("POST", "/v1/coupons")) == 2
    assert len(fake.promotion_codes) == 5


def test_a_credit_is_a_negative_balance_transaction(fake: StripeFake, issuer: StripeIssuer) -> None:
    issued = issuer.issue(action(1), CAMPAIGN, CREDIT, MEMBER)
    [txn] = fake.balance_transactions.values()
    assert txn["amount"] == -2500
    assert txn["currency"] == "usd"
    assert txn["metadata"]["action_id"] == action(1)
    assert issued.provider_ref == txn["id"]
    assert issued.amount == Money(2500, "USD")
    assert fake.customers["cus_m1"]["balance"] == -2500


def test_a_credit_is_found_by_paging_the_customers_transactions(
    fake: StripeFake, issuer: StripeIssuer
) -> None:
    issued = issuer.issue(action(1), CAMPAIGN, CREDIT, MEMBER)
    for _ in range(150):  # newer, unrelated transactions push ours past the first page
        fake.create_balance_transaction({"amount": "-1", "currency": "usd"}, "cus_m1")
    fake.forget_idempotency_keys()
    again = fresh(fake)
    try:
        assert again.issue(action(1), CAMPAIGN, CREDIT, MEMBER) == issued
    finally:
        again.close()
    assert len(ours(fake, action(1))) == 1
    listing = fake.requests_to("GET", "/v1/customers/cus_m1/balance_transactions")
    assert any("starting_after" in r.query for r in listing)


def test_dropped_response_then_rerun_finds_the_object(fake: StripeFake) -> None:
    fake.fail_next("drop", method="POST", path="^/v1/promotion_codes$")
    crashing = fresh(fake, retry=RetryPolicy(attempts=1))
    try:
        with pytest.raises(TransientRewardError):
            crashing.issue(action(1), CAMPAIGN, PERCENT, MEMBER)
    finally:
        crashing.close()
    assert len(fake.promotion_codes) == 1  # Stripe made it; we never heard
    rerun = fresh(fake)
    try:
        issued = rerun.issue(action(1), CAMPAIGN, PERCENT, MEMBER)
    finally:
        rerun.close()
    assert [issued.provider_ref] == list(fake.promotion_codes)
    assert len(ours(fake, action(1))) == 1


@pytest.mark.parametrize("kind", ["drop", "reset", "500", "503", "409", "timeout"])
def test_transient_failures_are_retried_into_exactly_one_object(
    fake: StripeFake, issuer: StripeIssuer, kind: str
) -> None:
    fake.fail_next(kind, times=2, method="POST", delay=0.8)
    issuer.issue(action(1), CAMPAIGN, CREDIT, MEMBER)
    assert len(ours(fake, action(1))) == 1
    posts = fake.requests_to("POST", "/v1/customers/cus_m1/balance_transactions")
    assert len(posts) == 3
    assert len({r.idempotency_key for r in posts}) == 1  # every retry reused the key


def test_forgotten_idempotency_keys_do_not_make_a_second_object(
    fake: StripeFake, issuer: StripeIssuer
) -> None:
    issuer.issue(action(1), CAMPAIGN, PERCENT, MEMBER)
    issuer.issue(action(2), CAMPAIGN, CREDIT, MEMBER)
    fake.forget_idempotency_keys()  # 24 hours later
    later = fresh(fake, clock=NOW + timedelta(days=2))
    try:
        later.issue(action(1), CAMPAIGN, PERCENT, MEMBER)
        later.issue(action(2), CAMPAIGN, CREDIT, MEMBER)
    finally:
        later.close()
    assert len(ours(fake, action(1))) == 1
    assert len(ours(fake, action(2))) == 1


def test_a_reused_key_with_other_parameters_is_a_reward_error(
    fake: StripeFake, issuer: StripeIssuer
) -> None:
    issuer.issue(action(1), CAMPAIGN, PERCENT, MEMBER)
    fake.promotion_codes.clear()  # gone from Stripe, but Stripe still holds the key
    later = fresh(fake, clock=NOW + timedelta(days=2))  # so the expiry differs
    try:
        with pytest.raises(RewardError, match="idempotency_error"):
            later.issue(action(1), CAMPAIGN, PERCENT, MEMBER)
    finally:
        later.close()


def test_rate_limited_requests_wait_and_succeed(fake: StripeFake) -> None:
    fake.fail_next("429", times=2, retry_after=0.2)
    started = datetime.now(UTC)
    issuing = fresh(fake)
    try:
        issuing.issue(action(1), CAMPAIGN, CREDIT, MEMBER)
    finally:
        issuing.close()
    assert datetime.now(UTC) - started >= timedelta(seconds=0.35)  # Retry-After honoured
    assert len(ours(fake, action(1))) == 1


def test_the_client_side_limiter_keeps_under_the_servers_limit(fake: StripeFake) -> None:
    fake.set_rate_limit(20)
    polite = fresh(fake, max_requests_per_second=15.0)
    try:
        for n in range(12):
            polite.issue(action(n), CAMPAIGN, CREDIT, MEMBER)
    finally:
        polite.close()
    assert not [r for r in fake.requests if r.status == 429]

    fake.set_rate_limit(5)
    eager = fresh(fake, max_requests_per_second=1000.0, retry=RetryPolicy(8, 0.05, 0.3))
    try:
        for n in range(20, 28):
            eager.issue(action(n), CAMPAIGN, CREDIT, MEMBER)
    finally:
        eager.close()
    assert [r for r in fake.requests if r.status == 429]  # refused, then waited
    assert all(len(ours(fake, action(n))) == 1 for n in range(20, 28))


def test_giving_up_is_transient(fake: StripeFake) -> None:
    fake.fail_next("503", times=10)
    issuing = fresh(fake, retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02))
    try:
        with pytest.raises(TransientRewardError, match="after 3 attempts"):
            issuing.issue(action(1), CAMPAIGN, CREDIT, MEMBER)
    finally:
        issuing.close()


def test_permanent_errors_name_the_reason(fake: StripeFake, issuer: StripeIssuer) -> None:
    with pytest.raises(RewardError, match="no Stripe customer"):
        issuer.issue(action(1), CAMPAIGN, CREDIT, replace(MEMBER, stripe_customer_id=None))
    with pytest.raises(RewardError, match="No such customer") as caught:
        issuer.issue(action(2), CAMPAIGN, PERCENT, replace(MEMBER, stripe_customer_id="cus_x"))
    assert not isinstance(caught.value, TransientRewardError)
    issuer.issue(action(3), CAMPAIGN, CREDIT, MEMBER)
    euros = Reward("credit", Money(100, "EUR"), amount=Money(100, "EUR"))
    with pytest.raises(RewardError, match="does not match the customer's currency"):
        issuer.issue(action(4), CAMPAIGN, euros, MEMBER)
    assert not ours(fake, action(2)) and not ours(fake, action(4))


def test_deactivate_withdraws_codes_and_reverses_credits(
    fake: StripeFake, issuer: StripeIssuer
) -> None:
    code = issuer.issue(action(1), CAMPAIGN, PERCENT, MEMBER)
    credit = issuer.issue(action(2), CAMPAIGN, CREDIT, MEMBER)
    for _ in range(2):  # twice: harmless
        issuer.deactivate(code)
        issuer.deactivate(credit)
    assert fake.promotion_codes[code.provider_ref]["active"] is False
    assert fake.customers["cus_m1"]["balance"] == 0
    assert len(ours(fake, action(2))) == 2  # the credit and its one reversal


def insert_member(engine: sa.Engine) -> RewardMember:
    """Member m1 (Stripe customer cus_m1) in the database, as the issuers see it."""
    stamp = datetime(2026, 1, 1)
    with engine.begin() as connection:
        pk = connection.execute(
            sa.insert(members).values(
                member_id="m1",
                email="m1@example.com",
                stripe_customer_id="cus_m1",
                email_opt_in=True,
                row_hash="x",
                created_at=stamp,
                updated_at=stamp,
            )
        ).inserted_primary_key[0]
    return replace(MEMBER, member_pk=pk)


def test_recording_issuer_stores_the_reward_and_answers_from_it(
    engine: sa.Engine, fake: StripeFake, issuer: StripeIssuer
) -> None:
    member = insert_member(engine)
    recording = RecordingIssuer(engine, {"discount": issuer, "credit": issuer})
    issued = recording.issue(action(1), CAMPAIGN, PERCENT, member)
    calls = len(fake.requests)
    assert recording.issue(action(1), CAMPAIGN, PERCENT, member) == issued
    assert len(fake.requests) == calls  # answered from the rewards table
    with engine.connect() as connection:
        row = connection.execute(sa.select(rewards)).one()
    assert (row.provider, row.provider_ref, row.code) == (
        "stripe",
        issued.provider_ref,
        issued.code,
    )
    assert row.coupon_id == fake.promotion_codes[issued.provider_ref]["promotion"]["coupon"]
    assert (row.percent_off, row.state, row.customer) == (15, "issued", "cus_m1")
    recording.deactivate(issued)
    with engine.connect() as connection:
        assert connection.execute(sa.select(rewards.c.state)).scalar_one() == "deactivated"
    with pytest.raises(RewardError, match="withdrawn"):
        recording.issue(action(1), CAMPAIGN, PERCENT, member)


@pytest.mark.parametrize("reward", [PERCENT, CREDIT], ids=["discount", "credit"])
def test_a_first_attempt_is_one_request_and_a_retry_looks_first(
    fake: StripeFake, issuer: StripeIssuer, reward: Reward
) -> None:
    issuer.ensure_coupon(CAMPAIGN, PERCENT)  # once per process, not per reward
    before = len(fake.requests)

    issued = issuer.issue(action(1), CAMPAIGN, reward, MEMBER, first_attempt=True)

    assert [r.method for r in fake.requests[before:]] == ["POST"]  # the create, nothing else
    assert fake.requests[-1].idempotency_key is not None
    before = len(fake.requests)
    # Attempted before (a retry, a recovery): it looks first, finds it, creates nothing.
    assert issuer.issue(action(1), CAMPAIGN, reward, MEMBER) == issued
    assert [r.method for r in fake.requests[before:]] == ["GET"]
    assert len(ours(fake, action(1))) == 1
