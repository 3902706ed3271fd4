"""Redemptions from Stripe events, expiry and reconcile, against the Stripe fake and the
ledger on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from night.reconcile import reconcile
from night.rewards import CURSOR, expire_overdue, sync_stripe
from nudgeflow.money import Money
from providers.recording import RecordingIssuer
from providers.rewards import RewardMember
from providers.stripe_api import StripeApi
from providers.stripe_issuer import StripeIssuer
from store import ledger
from store.ledger.tables import ledger_transactions
from store.reward_tables import get_cursor, rewards
from store.schema import events
from tests.fakes.stripe_api import StripeFake
from tests.integration.providers.test_stripe_issuer import NOW, action, insert_member, make_api
from tests.unit.providers.test_issuers_local import CAMPAIGN, CREDIT, PERCENT

UTC_ZONE = ZoneInfo("UTC")
TODAY = NOW.date()


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


@pytest.fixture
def member(engine: sa.Engine) -> RewardMember:
    return insert_member(engine)


def issue(engine: sa.Engine, api: StripeApi, member: RewardMember, n: int, reward=PERCENT):  # type: ignore[no-untyped-def]
    """What dispatch does: reserve in the ledger, issue through Stripe, post the issue."""
    action_id = action(n)
    estimate = reward.cost
    with ledger.ledger_transaction(engine) as connection:
        ledger.reserve(
            connection, action_id, CAMPAIGN.id, estimate, None, TODAY, fund_shortfall=True
        )
    issued = RecordingIssuer(engine, {"discount": StripeIssuer(api), "credit": StripeIssuer(api)})
    reward_issued = issued.issue(action_id, CAMPAIGN, reward, member)
    with ledger.ledger_transaction(engine) as connection:
        ledger.issue(connection, action_id, reward_issued.provider_ref)
    return reward_issued


def ledger_kinds(engine: sa.Engine, action_id: str) -> list[str]:
    with engine.connect() as connection:
        return sorted(
            connection.execute(
                sa.select(ledger_transactions.c.kind).where(
                    ledger_transactions.c.action_id == action_id
                )
            ).scalars()
        )


def test_a_redemption_is_recorded_once(
    engine: sa.Engine, fake: StripeFake, api: StripeApi, member: RewardMember
) -> None:
    issued = issue(engine, api, member, 1)
    issue(engine, api, member, 2)  # never used
    discount = fake.apply_promotion_code(issued.provider_ref)
    # The invoice names the discount by id only, as event snapshots do.
    fake.pay_invoice("cus_m1", {discount["id"]: 1234})

    first = sync_stripe(engine, api, UTC_ZONE)
    assert (first.redeemed, first.linked, first.problems) == (1, 1, [])
    again = sync_stripe(engine, api, UTC_ZONE)
    assert (again.redeemed, again.linked) == (0, 0)

    with engine.connect() as connection:
        row = connection.execute(sa.select(rewards).where(rewards.c.action_id == action(1))).one()
        redeemed = connection.execute(
            sa.select(events).where(events.c.type == "reward_redeemed")
        ).all()
        cursor = get_cursor(connection, CURSOR)
    assert (row.state, row.redeemed_minor, row.discount_id) == ("redeemed", 1234, discount["id"])
    [event] = redeemed
    assert event.member_pk == member.member_pk
    assert event.amount_minor == 1234 and event.currency == "USD"
    assert event.event_id.startswith("stripe:evt_")
    assert event.properties["action_id"] == action(1)
    assert cursor[0] == max(e["created"] for e in fake.events)
    assert ledger_kinds(engine, action(1)) == ["issue", "redeem", "reserve"]
    assert ledger_kinds(engine, action(2)) == ["issue", "reserve"]


def test_expanded_discounts_and_the_cursor(
    engine: sa.Engine, fake: StripeFake, api: StripeApi, member: RewardMember
) -> None:
    issued = issue(engine, api, member, 1)
    assert sync_stripe(engine, api, UTC_ZONE).redeemed == 0
    with engine.connect() as connection:
        before = get_cursor(connection, CURSOR)
    # Events from later on; the discount arrives expanded in the invoice itself.
    later = int(NOW.timestamp()) + 3600
    discount = fake.apply_promotion_code(issued.provider_ref, created=later)
    fake.pay_invoice("cus_m1", {discount["id"]: 900}, expand_discounts=True, created=later + 5)
    result = sync_stripe(engine, api, UTC_ZONE)
    assert result.redeemed == 1 and result.cursor == later + 5 > before[0]
    listed = fake.requests_to("GET", "/v1/events")[-1]
    assert listed.query["created"] == {"gte": str(before[0])}


def test_unused_codes_expire_and_release_the_budget(
    engine: sa.Engine, fake: StripeFake, api: StripeApi, member: RewardMember
) -> None:
    unused = issue(engine, api, member, 1)
    applied = issue(engine, api, member, 2)
    issue(engine, api, member, 3, reward=CREDIT)  # credits do not expire
    fake.apply_promotion_code(applied.provider_ref)  # used in time; its invoice pays later
    sync_stripe(engine, api, UTC_ZONE)
    assert unused.expires_at is not None
    end = int(unused.expires_at.timestamp())
    with ledger.ledger_transaction(engine) as connection:
        assert expire_overdue(connection, end - 1) == ([], [])
        expired, problems = expire_overdue(connection, end, day=date(2026, 5, 1))
    assert (expired, problems) == ([action(1)], [])
    with ledger.ledger_transaction(engine) as connection:
        assert expire_overdue(connection, end + 86_400) == ([], [])
    assert ledger_kinds(engine, action(1)) == ["expire", "issue", "reserve"]
    assert ledger_kinds(engine, action(2)) == ["issue", "reserve"]


def test_reconcile_lists_every_difference(
    engine: sa.Engine, fake: StripeFake, api: StripeApi, member: RewardMember
) -> None:
    code = issue(engine, api, member, 1)
    credit = issue(engine, api, member, 2, reward=CREDIT)
    assert reconcile(engine, api) == []

    fake.promotion_codes[code.provider_ref]["customer"] = "cus_other"
    fake.balance_transactions[credit.provider_ref]["amount"] = -9999
    stray = StripeIssuer(api)
    stray.issue(action(3), CAMPAIGN, PERCENT, member)  # in Stripe, never recorded here
    differences = reconcile(engine, api)
    assert len(differences) == 3, differences
    assert any("customer is cus_other in Stripe" in d for d in differences)
    assert any("credit is 9999 USD in Stripe, 2500 USD here" in d for d in differences)
    assert any(f"(action {action(3)}) has no reward here" in d for d in differences)

    del fake.promotion_codes[code.provider_ref]
    assert any("promotion code not found in Stripe" in d for d in reconcile(engine, api))


def test_a_redemption_without_a_reservation_is_reported(
    engine: sa.Engine, fake: StripeFake, api: StripeApi, member: RewardMember
) -> None:
    recording = RecordingIssuer(engine, {"discount": StripeIssuer(api)})
    issued = recording.issue(action(1), CAMPAIGN, replace(PERCENT), member)
    discount = fake.apply_promotion_code(issued.provider_ref)
    fake.pay_invoice("cus_m1", {discount["id"]: 500})
    # A good redemption an hour later: the cursor must not jump past the refused one for it.
    later = int(NOW.timestamp()) + 3600
    fine = issue(engine, api, member, 2)
    second = fake.apply_promotion_code(fine.provider_ref, created=later)
    fake.pay_invoice("cus_m1", {second["id"]: 700}, created=later + 5)
    result = sync_stripe(engine, api, UTC_ZONE)
    assert result.redeemed == 1
    assert [p for p in result.problems if "no reservation" in p]
    with engine.connect() as connection:
        state = connection.execute(
            sa.select(rewards.c.state).where(rewards.c.action_id == action(1))
        ).scalar_one()
    assert state == "issued"  # rolled back with the ledger posting: a later sync can retry

    # The cursor stayed before the refused event: once the reservation exists (the operator
    # fixed it), the next sync records the redemption instead of having skipped it.
    with ledger.ledger_transaction(engine) as connection:
        ledger.reserve(
            connection, action(1), CAMPAIGN.id, PERCENT.cost, None, TODAY, fund_shortfall=True
        )
        ledger.issue(connection, action(1), issued.provider_ref)
    retried = sync_stripe(engine, api, UTC_ZONE)
    assert (retried.redeemed, retried.problems) == (1, [])
    assert ledger_kinds(engine, action(1)) == ["issue", "redeem", "reserve"]


def test_sync_records_money_in_the_invoice_currency(
    engine: sa.Engine, fake: StripeFake, api: StripeApi, member: RewardMember
) -> None:
    issued = issue(engine, api, member, 1)
    discount = fake.apply_promotion_code(issued.provider_ref)
    fake.pay_invoice("cus_m1", {discount["id"]: 700}, currency="usd")
    sync_stripe(engine, api, UTC_ZONE, now=datetime(2026, 6, 1, tzinfo=UTC))
    with engine.connect() as connection:
        amount = connection.execute(
            sa.select(events.c.amount_minor, events.c.currency).where(
                events.c.type == "reward_redeemed"
            )
        ).one()
    assert tuple(amount) == (700, "USD")
    assert Money(700, "USD") == Money(amount[0], amount[1])
