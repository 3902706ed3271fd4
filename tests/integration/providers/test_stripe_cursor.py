"""The Stripe sync's cursor, against the Stripe fake on SQLite and PostgreSQL: a second sync
reads only what is new (across pages), the cursor is the newest event processed, and a crash
between recording and storing the cursor records nothing twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from night import rewards as night_rewards
from night.rewards import CURSOR, sync_stripe
from providers.rewards import RewardMember
from providers.stripe_api import PAGE, StripeApi
from store.reward_tables import get_cursor, rewards
from store.schema import events
from tests.fakes.stripe_api import StripeFake
from tests.integration.providers.test_stripe_issuer import NOW, action, insert_member, make_api
from tests.integration.providers.test_stripe_sync import UTC_ZONE, issue, ledger_kinds

START = int(NOW.timestamp())


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


def stranger_discounts(fake: StripeFake, count: int, start: int) -> list[str]:
    """``count`` discounts applied by other Stripe customers (not our codes), about forty a
    second from ``start``: events the sync reads and records nothing for."""
    return [
        fake.emit(
            "customer.discount.created",
            {"id": f"di_other{start}_{n}", "object": "discount", "promotion_code": None},
            created=start + n // 40,
        )
        for n in range(count)
    ]


def newest_event(fake: StripeFake) -> tuple[int, str]:
    ours = [e for e in fake.events if e["type"] in ("customer.discount.created", "invoice.paid")]
    # Stripe's order: by creation, ties in the order it listed them (the fake: by id).
    newest = max(ours, key=lambda e: (e["created"], e["id"]))
    return int(newest["created"]), str(newest["id"])


def cursor(engine: sa.Engine) -> tuple[int, str | None]:
    with engine.connect() as connection:
        return get_cursor(connection, CURSOR)


def redeemed_events(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(
                sa.select(sa.func.count()).where(events.c.type == "reward_redeemed")
            ).scalar_one()
        )


def test_a_second_sync_with_nothing_new_reads_nothing(
    engine: sa.Engine, fake: StripeFake, api: StripeApi, member: RewardMember
) -> None:
    issued = issue(engine, api, member, 1)
    discount = fake.apply_promotion_code(issued.provider_ref)
    fake.pay_invoice("cus_m1", {discount["id"]: 1234})

    first = sync_stripe(engine, api, UTC_ZONE)
    assert (first.events, first.linked, first.redeemed, first.problems) == (2, 1, 1, [])
    assert cursor(engine) == newest_event(fake)

    again = sync_stripe(engine, api, UTC_ZONE)
    assert (again.events, again.linked, again.redeemed, again.problems) == (0, 0, 0, [])
    assert cursor(engine) == newest_event(fake)


def test_events_arriving_between_syncs_are_read_once_across_pages(
    engine: sa.Engine, fake: StripeFake, api: StripeApi, member: RewardMember
) -> None:
    before = stranger_discounts(fake, PAGE + 50, START)  # two pages, many per second
    first = sync_stripe(engine, api, UTC_ZONE)
    assert first.events == PAGE + 50
    assert cursor(engine) == newest_event(fake) == (START + (PAGE + 49) // 40, before[-1])

    # More than a page arrives, some in the very second the cursor stopped in, with one
    # redemption of ours in the middle of it.
    last_second = START + (PAGE + 49) // 40
    issued = issue(engine, api, member, 1)
    stranger_discounts(fake, 60, last_second)
    discount = fake.apply_promotion_code(issued.provider_ref, created=last_second + 2)
    fake.pay_invoice("cus_m1", {discount["id"]: 900}, created=last_second + 2)
    stranger_discounts(fake, 70, last_second + 2)

    second = sync_stripe(engine, api, UTC_ZONE)
    assert (second.events, second.linked, second.redeemed, second.problems) == (132, 1, 1, [])
    assert cursor(engine) == newest_event(fake)
    third = sync_stripe(engine, api, UTC_ZONE)
    assert (third.events, third.redeemed) == (0, 0)
    assert ledger_kinds(engine, action(1)) == ["issue", "redeem", "reserve"]
    assert redeemed_events(engine) == 1


def test_a_crash_before_the_cursor_is_stored_records_nothing_twice(
    engine: sa.Engine,
    fake: StripeFake,
    api: StripeApi,
    member: RewardMember,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issued = issue(engine, api, member, 1)
    discount = fake.apply_promotion_code(issued.provider_ref)
    fake.pay_invoice("cus_m1", {discount["id"]: 700})

    def killed(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("killed before the cursor was stored")

    with monkeypatch.context() as patch:
        patch.setattr(night_rewards, "set_cursor", killed)
        with pytest.raises(RuntimeError, match="killed"):
            sync_stripe(engine, api, UTC_ZONE)
    assert cursor(engine) == (0, None)  # the redemption was recorded, the cursor was not

    again = sync_stripe(engine, api, UTC_ZONE)
    assert (again.events, again.linked, again.redeemed, again.problems) == (2, 0, 0, [])
    assert ledger_kinds(engine, action(1)) == ["issue", "redeem", "reserve"]
    assert redeemed_events(engine) == 1
    with engine.connect() as connection:
        state = connection.execute(
            sa.select(rewards.c.state).where(rewards.c.action_id == action(1))
        ).scalar_one()
    assert state == "redeemed"
    assert cursor(engine) == newest_event(fake)


def test_a_cursor_event_stripe_no_longer_keeps_falls_back_to_its_time(
    engine: sa.Engine, fake: StripeFake, api: StripeApi, member: RewardMember
) -> None:
    stranger_discounts(fake, 3, START)
    sync_stripe(engine, api, UTC_ZONE)
    _created, last_id = cursor(engine)
    # Stripe keeps events for 30 days: a sync after a long pause finds its cursor gone.
    fake.events[:] = [e for e in fake.events if e["id"] != last_id]
    issued = issue(engine, api, member, 1)
    discount = fake.apply_promotion_code(issued.provider_ref, created=START + 60)
    fake.pay_invoice("cus_m1", {discount["id"]: 500}, created=START + 61)

    result = sync_stripe(engine, api, UTC_ZONE)
    # Read again from the cursor's second (the two strangers left there), then the new ones.
    assert (result.events, result.linked, result.redeemed, result.problems) == (4, 1, 1, [])
    assert cursor(engine) == newest_event(fake)
    assert sync_stripe(engine, api, UTC_ZONE).events == 0
