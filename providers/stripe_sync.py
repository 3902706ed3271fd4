"""Redemptions from Stripe, expiry, and reconciliation.

``sync_stripe`` pages through Stripe's events since the stored cursor, oldest first:

- ``customer.discount.created`` for one of our promotion codes links the discount to the
  reward (an invoice that pays later may name only the discount id);
- ``invoice.paid`` whose ``total_discount_amounts`` include one of our discounts is the
  redemption: the reward is marked redeemed, the ledger moves it outstanding → spent at the
  actual amount (``store.ledger.redeem``), and a ``reward_redeemed`` event is recorded for the
  member (a response for fatigue and impact). Its ``event_id`` is derived from Stripe's event
  id, so syncing the same events twice records nothing new.

``expire_overdue`` marks discounts not used by their expiry as expired and releases their
estimate back to the budget (``store.ledger.expire``). ``reconcile`` compares the rewards we
recorded with what Stripe holds and lists every difference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from nudgeflow.timeutil import business_date
from providers.rewards import utc_now
from providers.stripe_api import PAGE, StripeApi
from store import ledger
from store.ledger_tables import ledger_transactions
from store.reward_tables import get_cursor, rewards, set_cursor, set_reward_state
from store.schema import actions, events, members

CURSOR = "stripe_events"
EVENT_TYPES = ["customer.discount.created", "invoice.paid"]


@dataclass
class SyncResult:
    events: int = 0
    linked: int = 0  # discounts tied to our promotion codes
    redeemed: int = 0
    expired: int = 0
    problems: list[str] = field(default_factory=list)
    cursor: int = 0


def _ident(value: Any) -> str | None:
    """An expandable field: an id, or an object carrying one."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) or hasattr(value, "get"):
        ident = value.get("id")
        return str(ident) if ident else None
    return None


def _plain(obj: Any) -> dict[str, Any]:
    """A StripeObject as plain dicts and lists (``to_dict`` keeps nested objects typed)."""
    return dict(obj.to_dict() if hasattr(obj, "to_dict") else obj)


def _events_since(api: StripeApi, created: int) -> Iterator[dict[str, Any]]:
    """Events created at or after ``created``, oldest first. Stripe lists newest first, so
    the pages are gathered and then reversed. (Events of the cursor's own second are read
    again; processing them is idempotent.)"""
    gathered: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {
            "created": {"gte": created},
            "types": EVENT_TYPES,
            "limit": PAGE,
        }
        if after:
            params["starting_after"] = after
        page = api.call(
            "listing events",
            lambda p=params: api.client.v1.events.list(p),  # type: ignore[misc]
        )
        gathered.extend(_plain(event) for event in page.data)
        if not page.has_more or not page.data:
            break
        after = page.data[-1].id
    return iter(gathered[::-1])


def _reward_by(connection: sa.Connection, column: sa.Column[Any], value: str) -> Any:
    return connection.execute(
        sa.select(rewards).where(column == value, rewards.c.provider == "stripe")
    ).first()


def _link_discount(engine: sa.Engine, discount: dict[str, Any], now: datetime) -> bool:
    promo = _ident(discount.get("promotion_code"))
    if promo is None:
        return False
    with engine.begin() as connection:
        row = _reward_by(connection, rewards.c.provider_ref, promo)
        if row is None or row.discount_id is not None:
            return False
        connection.execute(
            sa.update(rewards)
            .where(rewards.c.action_id == row.action_id)
            .values(discount_id=discount.get("id"), updated_at=now.replace(tzinfo=None))
        )
        return True


def _redemptions(connection: sa.Connection, invoice: dict[str, Any]) -> list[tuple[Any, int]]:
    """(reward row, actual discount in minor units) for each of our codes on the invoice."""
    promo_of: dict[str, str] = {}
    for discount in invoice.get("discounts") or []:
        if isinstance(discount, dict) and discount.get("id"):
            promo = _ident(discount.get("promotion_code"))
            if promo:
                promo_of[str(discount["id"])] = promo
    found = []
    for item in invoice.get("total_discount_amounts") or []:
        discount_id = _ident(item.get("discount"))
        if discount_id is None:
            continue
        row = None
        if discount_id in promo_of:
            row = _reward_by(connection, rewards.c.provider_ref, promo_of[discount_id])
        if row is None:
            row = _reward_by(connection, rewards.c.discount_id, discount_id)
        if row is not None:
            found.append((row, int(item.get("amount") or 0)))
    return found


def _redeem(
    engine: sa.Engine,
    event: dict[str, Any],
    invoice: dict[str, Any],
    zone: ZoneInfo,
    now: datetime,
) -> tuple[int, list[str]]:
    redeemed, problems = 0, []
    currency = str(invoice.get("currency") or "").upper()
    created = int(event["created"])
    with engine.connect() as connection:
        matches = _redemptions(connection, invoice)
    for row, amount in matches:
        if row.state not in ("issued", "expired"):
            continue  # already redeemed (or withdrawn): a re-sync changes nothing
        event_id = f"stripe:{event['id']}:{row.action_id}"
        try:
            with ledger.ledger_transaction(engine) as connection:
                set_reward_state(
                    connection,
                    row.action_id,
                    "redeemed",
                    now,
                    redeemed_at=created,
                    redeemed_minor=amount,
                    redeemed_event=event["id"],
                )
                ledger.redeem(
                    connection,
                    row.action_id,
                    Money(amount, currency or row.currency),
                    row.provider_ref,
                    business_date=business_date(created, zone),
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
                            occurred_at=created,
                            amount_minor=amount,
                            currency=currency or row.currency,
                            properties={
                                "action_id": row.action_id,
                                "campaign_id": row.campaign_id,
                                "promotion_code": row.provider_ref,
                                "invoice": invoice.get("id"),
                                "stripe_event": event["id"],
                            },
                        )
                    )
            redeemed += 1
        except RewardError as exc:
            problems.append(f"{event['id']}: action {row.action_id}: {exc}")
    return redeemed, problems


def sync_stripe(
    engine: sa.Engine,
    api: StripeApi,
    zone: ZoneInfo,
    *,
    now: datetime | None = None,
) -> SyncResult:
    """Record every redemption Stripe reported since the last sync; advance the cursor."""
    now = now or utc_now()
    with engine.connect() as connection:
        since, _last = get_cursor(connection, CURSOR)
    result = SyncResult(cursor=since)
    last_id: str | None = None
    held = False  # the cursor stops before the first event that could not be recorded
    for event in _events_since(api, since):
        result.events += 1
        obj = event.get("data", {}).get("object") or {}
        if event["type"] == "customer.discount.created":
            result.linked += _link_discount(engine, obj, now)
        elif event["type"] == "invoice.paid":
            redeemed, problems = _redeem(engine, event, obj, zone, now)
            result.redeemed += redeemed
            result.problems.extend(problems)
            # Keep the event in reach of the next sync instead of losing its redemption:
            # later events are still processed (recording them is idempotent) and are
            # simply read again next time.
            held = held or bool(problems)
        if not held:
            result.cursor = max(result.cursor, int(event["created"]))
            last_id = str(event["id"])
    if last_id is not None:
        with engine.begin() as connection:
            set_cursor(connection, CURSOR, result.cursor, last_id, now)
    return result


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


# -- reconcile ------------------------------------------------------------------------------


def _issued_actions(connection: sa.Connection) -> set[str]:
    return {
        action_id
        for (action_id,) in connection.execute(
            sa.select(ledger_transactions.c.action_id).where(ledger_transactions.c.kind == "issue")
        )
    }


def reconcile(engine: sa.Engine, api: StripeApi) -> list[str]:
    """Every difference between our Stripe rewards and Stripe: missing objects, wrong
    amounts or customers, objects carrying our metadata with no reward row or no ledger
    entry. An empty list means the two agree."""
    problems: list[str] = []
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(rewards).where(rewards.c.provider == "stripe").order_by(rewards.c.action_id)
        ).all()
        in_ledger = _issued_actions(connection)
        customers = {
            c
            for (c,) in connection.execute(
                sa.select(members.c.stripe_customer_id)
                .where(
                    members.c.stripe_customer_id.is_not(None),
                    members.c.id.in_(sa.select(actions.c.member_pk)),
                )
                .distinct()
            )
        }
    ours = {row.action_id: row for row in rows}
    customers |= {row.customer for row in rows if row.customer}
    coupons: dict[str, Any] = {}
    promos = _all_promotion_codes(api)
    credits: dict[str, dict[str, Any]] = {}  # id → balance transaction
    for customer in sorted(customers):
        for listed in api.balance_transactions(customer):
            credits[listed.id] = _plain(listed)

    for row in rows:
        where = f"action {row.action_id} ({row.kind} {row.provider_ref})"
        if row.kind == "discount":
            promo = promos.get(row.provider_ref)
            if promo is None:
                problems.append(f"{where}: promotion code not found in Stripe")
                continue
            if promo.get("customer") != row.customer:
                problems.append(
                    f"{where}: customer is {promo.get('customer')} in Stripe, {row.customer} here"
                )
            coupon_ref = _ident((promo.get("promotion") or {}).get("coupon"))
            if coupon_ref != row.coupon_id:
                problems.append(f"{where}: coupon is {coupon_ref} in Stripe, {row.coupon_id} here")
            elif coupon_ref is not None:
                if coupon_ref not in coupons:
                    coupons[coupon_ref] = _plain(
                        api.call(
                            f"looking up coupon {coupon_ref}",
                            lambda c=coupon_ref: api.client.v1.coupons.retrieve(c),  # type: ignore[misc]
                        )
                    )
                coupon = coupons[coupon_ref]
                if row.percent_off is not None and coupon.get("percent_off") != row.percent_off:
                    problems.append(
                        f"{where}: {coupon.get('percent_off')}% off in Stripe, "
                        f"{row.percent_off}% here"
                    )
                if row.percent_off is None and coupon.get("amount_off") != row.amount_minor:
                    problems.append(
                        f"{where}: amount off is {coupon.get('amount_off')} in Stripe, "
                        f"{row.amount_minor} here"
                    )
            if row.state == "deactivated" and promo.get("active"):
                problems.append(f"{where}: withdrawn here but still active in Stripe")
        elif row.kind == "credit":
            txn = credits.get(row.provider_ref)
            if txn is None:
                problems.append(f"{where}: balance transaction not found in Stripe")
                continue
            if txn.get("customer") != row.customer:
                problems.append(
                    f"{where}: customer is {txn.get('customer')} in Stripe, {row.customer} here"
                )
            if -int(txn.get("amount") or 0) != row.amount_minor or (
                str(txn.get("currency") or "").upper() != (row.currency or "")
            ):
                problems.append(
                    f"{where}: credit is {-int(txn.get('amount') or 0)} "
                    f"{str(txn.get('currency')).upper()} in Stripe, "
                    f"{row.amount_minor} {row.currency} here"
                )
        if row.state != "deactivated" and row.action_id not in in_ledger:
            problems.append(f"{where}: no issue entry in the ledger")

    tagged = [
        (p["id"], "promotion code", p) for p in promos.values() if _action_of(p) is not None
    ] + [
        (t["id"], "balance transaction", t)
        for t in credits.values()
        if _action_of(t) is not None and (t.get("metadata") or {}).get("nf_kind") == "credit"
    ]
    for ident, what, obj in sorted(tagged, key=lambda item: str(item[0])):
        action_id = _action_of(obj)
        recorded = ours.get(str(action_id))
        if recorded is None:
            problems.append(f"Stripe {what} {ident} (action {action_id}) has no reward here")
        elif recorded.provider_ref != ident:
            problems.append(
                f"Stripe {what} {ident} (action {action_id}) is a second object for the "
                f"action; the reward here is {recorded.provider_ref}"
            )
    return problems


def _action_of(obj: dict[str, Any]) -> str | None:
    value = (obj.get("metadata") or {}).get("action_id")
    return str(value) if value else None


def _all_promotion_codes(api: StripeApi) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": PAGE}
        if after:
            params["starting_after"] = after
        page = api.call(
            "listing promotion codes",
            lambda p=params: api.client.v1.promotion_codes.list(p),  # type: ignore[misc]
        )
        for promo in page.data:
            found[promo.id] = _plain(promo)
        if not page.has_more or not page.data:
            return found
        after = page.data[-1].id
