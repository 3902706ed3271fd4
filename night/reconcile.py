"""``ledger reconcile``: the Stripe rewards we recorded against what Stripe holds, and every
difference between them in words.

The rewards table and the ledger are read here; Stripe's objects come from
``providers.stripe_reads``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from providers.stripe_reads import balance_transactions, coupon, object_id, promotion_codes
from store.ledger.tables import ledger_transactions
from store.reward_tables import rewards
from store.schema import actions, members

if TYPE_CHECKING:
    from providers.stripe_api import StripeApi


def _issued_actions(connection: sa.Connection) -> set[str]:
    return {
        action_id
        for (action_id,) in connection.execute(
            sa.select(ledger_transactions.c.action_id).where(ledger_transactions.c.kind == "issue")
        )
    }


def _action_of(obj: dict[str, Any]) -> str | None:
    value = (obj.get("metadata") or {}).get("action_id")
    return str(value) if value else None


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
    coupons: dict[str, dict[str, Any]] = {}
    promos = promotion_codes(api)
    credits = balance_transactions(api, customers)

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
            coupon_ref = object_id((promo.get("promotion") or {}).get("coupon"))
            if coupon_ref != row.coupon_id:
                problems.append(f"{where}: coupon is {coupon_ref} in Stripe, {row.coupon_id} here")
            elif coupon_ref is not None:
                if coupon_ref not in coupons:
                    coupons[coupon_ref] = coupon(api, coupon_ref)
                found = coupons[coupon_ref]
                if row.percent_off is not None and found.get("percent_off") != row.percent_off:
                    problems.append(
                        f"{where}: {found.get('percent_off')}% off in Stripe, "
                        f"{row.percent_off}% here"
                    )
                if row.percent_off is None and found.get("amount_off") != row.amount_minor:
                    problems.append(
                        f"{where}: amount off is {found.get('amount_off')} in Stripe, "
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
