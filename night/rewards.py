"""Bringing the reward ledger up to date: funding from the campaign files, redemptions read
from Stripe, and expiry of codes nobody used in time.

``sync_stripe`` records the redemption facts ``providers.stripe_reads`` reads after the
stored cursor (the newest event recorded), oldest first: a discount applied links the discount
to its reward; a paid invoice with one of our discounts marks the reward redeemed, moves it
outstanding → spent in the ledger at the actual amount (``store.ledger.redeem``), and records
a ``reward_redeemed`` event for the member (a response for fatigue and impact). Its
``event_id`` is derived from Stripe's event id, so recording the same event twice (after a
crash before the cursor was stored) records nothing new. ``expire_overdue`` marks discounts
not used by their expiry as expired and releases their estimate back to the budget.

``record_stripe_fact`` records one fact; the sync and the Stripe webhook (worked from the
inbox by ``inbound.inbox``) both go through it.

``sync_rewards`` is the night's step (funding, then Stripe, then expiry at the end of the
business day); ``sync_rewards_now`` is ``nudgeflow stripe sync`` (Stripe, then expiry now).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from domain.campaign import Campaign
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from nudgeflow.timeutil import business_date, day_end, to_epoch
from providers.rewards import utc_now
from providers.stripe_reads import DiscountApplied, InvoicePaid, StripeEvent, events_after
from store import ledger
from store.reward_tables import get_cursor, rewards, set_cursor, set_reward_state
from store.schema import events

if TYPE_CHECKING:
    from providers.stripe_api import StripeApi

CURSOR = "stripe_events"
CURSOR_EVERY = 100  # events recorded between two stores of the cursor (a page of Stripe's)


@dataclass
class SyncResult:
    events: int = 0
    linked: int = 0  # discounts tied to our promotion codes
    redeemed: int = 0
    expired: int = 0
    problems: list[str] = field(default_factory=list)
    cursor: int = 0


@dataclass(frozen=True)
class RewardsSync:
    """What one sync changed: funding transactions, the Stripe sync (empty without Stripe),
    the actions whose rewards expired, and every problem (Stripe's first, then expiry's)."""

    funding_changes: int
    stripe: SyncResult
    expired: list[str]
    problems: list[str]

    def counts(self) -> dict[str, int]:
        return {
            "funding_changes": self.funding_changes,
            "redeemed": self.stripe.redeemed,
            "expired": len(self.expired),
        }


def _reward_by(connection: sa.Connection, column: sa.Column[Any], value: str) -> Any:
    return connection.execute(
        sa.select(rewards).where(column == value, rewards.c.provider == "stripe")
    ).first()


def _link_discount(engine: sa.Engine, applied: DiscountApplied, now: datetime) -> bool:
    if applied.promotion_code is None:
        return False
    with engine.begin() as connection:
        row = _reward_by(connection, rewards.c.provider_ref, applied.promotion_code)
        if row is None or row.discount_id is not None:
            return False
        connection.execute(
            sa.update(rewards)
            .where(rewards.c.action_id == row.action_id)
            .values(discount_id=applied.discount_id, updated_at=now.replace(tzinfo=None))
        )
        return True


def _redemptions(connection: sa.Connection, paid: InvoicePaid) -> list[tuple[Any, int]]:
    """(reward row, actual discount in minor units) for each of our codes on the invoice."""
    found = []
    for discount in paid.discounts:
        row = None
        if discount.promotion_code is not None:
            row = _reward_by(connection, rewards.c.provider_ref, discount.promotion_code)
        if row is None:
            row = _reward_by(connection, rewards.c.discount_id, discount.discount_id)
        if row is not None:
            found.append((row, discount.amount_minor))
    return found


def _redeem(
    engine: sa.Engine, paid: InvoicePaid, zone: ZoneInfo, now: datetime
) -> tuple[int, list[str]]:
    redeemed, problems = 0, []
    with engine.connect() as connection:
        matches = _redemptions(connection, paid)
    for row, amount in matches:
        if row.state not in ("issued", "expired"):
            continue  # already redeemed (or withdrawn): a re-sync changes nothing
        event_id = f"stripe:{paid.event_id}:{row.action_id}"
        currency = paid.currency or row.currency
        try:
            with ledger.ledger_transaction(engine) as connection:
                set_reward_state(
                    connection,
                    row.action_id,
                    "redeemed",
                    now,
                    redeemed_at=paid.created,
                    redeemed_minor=amount,
                    redeemed_event=paid.event_id,
                )
                # False when another sync (the night's and a manual one at once) posted
                # it first: both saw the reward issued, the ledger lock let one through.
                posted = ledger.redeem(
                    connection,
                    row.action_id,
                    Money(amount, currency),
                    row.provider_ref,
                    business_date=business_date(paid.created, zone),
                    now=now,
                )
                seen = connection.execute(
                    sa.select(events.c.id).where(events.c.event_id == event_id)
                ).first()
                if seen is None:
                    connection.execute(
                        sa.insert(events).values(
                            event_id=event_id,
                            member_pk=row.member_pk,
                            type="reward_redeemed",
                            occurred_at=paid.created,
                            amount_minor=amount,
                            currency=currency,
                            properties={
                                "action_id": row.action_id,
                                "campaign_id": row.campaign_id,
                                "promotion_code": row.provider_ref,
                                "invoice": paid.invoice_id,
                                "stripe_event": paid.event_id,
                            },
                        )
                    )
            redeemed += posted
        except RewardError as exc:
            problems.append(f"{paid.event_id}: action {row.action_id}: {exc}")
    return redeemed, problems


@dataclass(frozen=True)
class FactRecorded:
    """What recording one Stripe fact changed."""

    linked: int = 0
    redeemed: int = 0
    problems: tuple[str, ...] = ()


def record_stripe_fact(
    engine: sa.Engine, fact: StripeEvent, zone: ZoneInfo, now: datetime
) -> FactRecorded:
    """Record one redemption fact, however it arrived: read by ``sync_stripe`` or sent to
    the webhook (``inbound.inbox``). Idempotent, so a fact arriving both ways (or twice
    either way) is counted once: a discount already linked is left alone, a reward already
    redeemed is skipped, the ledger posts one redeem per action, and the ``reward_redeemed``
    event's id is derived from Stripe's event id. Other event types record nothing."""
    if isinstance(fact, DiscountApplied):
        return FactRecorded(linked=int(_link_discount(engine, fact, now)))
    if isinstance(fact, InvoicePaid):
        redeemed, problems = _redeem(engine, fact, zone, now)
        return FactRecorded(redeemed=redeemed, problems=tuple(problems))
    return FactRecorded()


def sync_stripe(
    engine: sa.Engine,
    api: StripeApi,
    zone: ZoneInfo,
    *,
    now: datetime | None = None,
) -> SyncResult:
    """Record every redemption Stripe reported after the stored cursor, oldest first, and
    move the cursor to the newest event recorded.

    The cursor is stored every ``CURSOR_EVERY`` events and at the end, each time after the
    events it covers were recorded: a crash in between reads those events again, and
    recording an event twice changes nothing (a discount already linked is left alone, a
    reward already redeemed is skipped, the ledger posts one redeem per action, the
    ``reward_redeemed`` event has an id derived from Stripe's)."""
    now = now or utc_now()
    with engine.connect() as connection:
        since, last_id = get_cursor(connection, CURSOR)
    result = SyncResult(cursor=since)
    mark: tuple[int, str] | None = None  # the newest event recorded and not yet stored
    held = False  # the cursor stops before the first event that could not be recorded
    for event in events_after(api, since, last_id):
        result.events += 1
        recorded = record_stripe_fact(engine, event, zone, now)
        result.linked += recorded.linked
        result.redeemed += recorded.redeemed
        result.problems.extend(recorded.problems)
        # Keep the event in reach of the next sync instead of losing its redemption: later
        # events are still processed (recording them is idempotent) and are simply read
        # again next time.
        held = held or bool(recorded.problems)
        if held:
            continue
        result.cursor, mark = event.created, (event.created, event.event_id)
        if result.events % CURSOR_EVERY == 0:
            _store_cursor(engine, mark, now)
            mark = None
    if mark is not None:
        _store_cursor(engine, mark, now)
    return result


def _store_cursor(engine: sa.Engine, mark: tuple[int, str], now: datetime) -> None:
    with engine.begin() as connection:
        set_cursor(connection, CURSOR, mark[0], mark[1], now)


def expire_overdue(
    connection: sa.Connection,
    as_of_end: int,
    *,
    day: date | None = None,
    now: datetime | None = None,
) -> tuple[list[str], list[str]]:
    """Expire discounts whose code was not used by ``as_of_end`` (epoch s): the reward is
    marked expired and the ledger releases its estimate. Run it inside
    ``ledger.ledger_transaction``. Returns (expired action ids, problems)."""
    now = now or utc_now()
    overdue = connection.execute(
        sa.select(rewards.c.action_id)
        .where(
            rewards.c.state == "issued",
            rewards.c.kind == "discount",
            rewards.c.expires_at <= as_of_end,
            # A code applied before its expiry was used in time; its invoice may pay later.
            rewards.c.discount_id.is_(None),
        )
        .order_by(rewards.c.action_id)
    ).all()
    expired, problems = [], []
    for (action_id,) in overdue:
        try:
            ledger.expire(connection, action_id, business_date=day, now=now)
        except RewardError as exc:
            problems.append(f"action {action_id}: {exc}")
            continue
        set_reward_state(connection, action_id, "expired", now)
        expired.append(action_id)
    return expired, problems


def _stripe_then_expiry(
    engine: sa.Engine,
    stripe: StripeApi | None,
    zone: ZoneInfo,
    expire_by: int,
    day: date,
    now: datetime,
    funding_changes: int = 0,
) -> RewardsSync:
    synced = sync_stripe(engine, stripe, zone, now=now) if stripe is not None else SyncResult()
    with ledger.ledger_transaction(engine) as connection:
        expired, expiry_problems = expire_overdue(connection, expire_by, day=day, now=now)
    return RewardsSync(funding_changes, synced, expired, synced.problems + expiry_problems)


def sync_rewards(
    engine: sa.Engine,
    campaigns: Sequence[Campaign],
    stripe: StripeApi | None,
    as_of: date,
    zone: ZoneInfo,
    *,
    now: datetime,
) -> RewardsSync:
    """The night's step, before planning: fund budgets from ``campaigns`` (every campaign
    file, enabled or not), record Stripe's redemptions (``stripe`` is None when rewards are
    not issued through Stripe), and expire codes unused by the end of ``as_of``."""
    with ledger.ledger_transaction(engine) as connection:
        funding = ledger.sync_funding(connection, campaigns, as_of, zone)
    return _stripe_then_expiry(
        engine, stripe, zone, day_end(as_of, zone), as_of, now, funding_changes=len(funding)
    )


def sync_rewards_now(
    engine: sa.Engine, stripe: StripeApi, zone: ZoneInfo, *, now: datetime
) -> RewardsSync:
    """``nudgeflow stripe sync``: record Stripe's redemptions since the last sync, then expire
    codes unused by ``now`` (no funding: budgets follow the files at night)."""
    instant = to_epoch(now)
    return _stripe_then_expiry(engine, stripe, zone, instant, business_date(instant, zone), now)
