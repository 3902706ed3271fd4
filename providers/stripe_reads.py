"""What nudgeflow reads back from Stripe: the events after a cursor, as redemption facts, and
the objects ``ledger reconcile`` compares with our records (promotion codes, balance
transactions, coupons) as plain dicts. Recording them is ``night.rewards``' work.

- ``customer.discount.created`` → ``DiscountApplied``: one of our promotion codes was applied
  (an invoice that pays later may name only the discount id);
- ``invoice.paid`` → ``InvoicePaid``: the discounts on the invoice and what each one took off.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nudgeflow.errors import RewardError

if TYPE_CHECKING:
    from providers.stripe_api import StripeApi


EVENT_TYPES = ["customer.discount.created", "invoice.paid"]


@dataclass(frozen=True)
class StripeEvent:
    """An event read from Stripe: its id and when it was created (epoch seconds)."""

    event_id: str
    created: int


@dataclass(frozen=True)
class DiscountApplied(StripeEvent):
    discount_id: str | None
    promotion_code: str | None


@dataclass(frozen=True)
class InvoiceDiscount:
    """One discount on a paid invoice: the promotion code when the invoice names it."""

    discount_id: str
    promotion_code: str | None
    amount_minor: int


@dataclass(frozen=True)
class InvoicePaid(StripeEvent):
    invoice_id: str | None
    currency: str  # upper case; empty when the invoice names none
    discounts: tuple[InvoiceDiscount, ...]


def object_id(value: Any) -> str | None:
    """An expandable field: an id, or an object carrying one."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) or hasattr(value, "get"):
        ident = value.get("id")
        return str(ident) if ident else None
    return None


def plain(obj: Any) -> dict[str, Any]:
    """A StripeObject as plain dicts and lists (``to_dict`` keeps nested objects typed)."""
    return dict(obj.to_dict() if hasattr(obj, "to_dict") else obj)


def _invoice_discounts(invoice: dict[str, Any]) -> tuple[InvoiceDiscount, ...]:
    promo_of: dict[str, str] = {}
    for discount in invoice.get("discounts") or []:
        if isinstance(discount, dict) and discount.get("id"):
            promo = object_id(discount.get("promotion_code"))
            if promo:
                promo_of[str(discount["id"])] = promo
    found = []
    for item in invoice.get("total_discount_amounts") or []:
        discount_id = object_id(item.get("discount"))
        if discount_id is not None:
            amount = int(item.get("amount") or 0)
            found.append(InvoiceDiscount(discount_id, promo_of.get(discount_id), amount))
    return tuple(found)


def redemption_fact(event: dict[str, Any]) -> StripeEvent:
    """The fact an event states; a bare ``StripeEvent`` for types we do not act on."""
    event_id, created = str(event["id"]), int(event["created"])
    obj = event.get("data", {}).get("object") or {}
    if event["type"] == "customer.discount.created":
        return DiscountApplied(
            event_id, created, obj.get("id"), object_id(obj.get("promotion_code"))
        )
    if event["type"] == "invoice.paid":
        currency = str(obj.get("currency") or "").upper()
        return InvoicePaid(event_id, created, obj.get("id"), currency, _invoice_discounts(obj))
    return StripeEvent(event_id, created)


def _still_kept(api: StripeApi, event_id: str) -> bool:
    """Whether Stripe still has the event (it keeps events for 30 days)."""
    try:
        api.call(f"looking up event {event_id}", lambda: api.client.v1.events.retrieve(event_id))
    except RewardError as exc:
        if "resource_missing" not in str(exc):
            raise
        return False
    return True


def events_after(api: StripeApi, created: int, last_id: str | None) -> Iterator[StripeEvent]:
    """Redemption facts of the events after the cursor, oldest first, page by page.

    The cursor is the last event recorded (``last_id``, created at ``created``): Stripe lists
    the events after it exactly (``ending_before``), however many share its second. Without
    one (the first sync), or when Stripe no longer keeps it (events live 30 days), the events
    created at or after ``created`` are read instead; Stripe lists those newest first, so
    they are gathered and reversed, and those of the cursor's own second are read again
    (recording them is idempotent)."""
    if last_id is not None and _still_kept(api, last_id):
        newer = api.list_newer(
            "listing events", api.client.v1.events.list, last_id, {"types": EVENT_TYPES}
        )
        yield from (redemption_fact(plain(event)) for event in newer)
        return
    listed = api.list_all(
        "listing events",
        api.client.v1.events.list,
        {"created": {"gte": created}, "types": EVENT_TYPES},
    )
    yield from [redemption_fact(plain(event)) for event in listed][::-1]


def promotion_codes(api: StripeApi) -> dict[str, dict[str, Any]]:
    """Every promotion code in the account, by id."""
    listed = api.list_all("listing promotion codes", api.client.v1.promotion_codes.list)
    return {promo.id: plain(promo) for promo in listed}


def balance_transactions(api: StripeApi, customers: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Every balance transaction of the customers, by id."""
    return {
        listed.id: plain(listed)
        for customer in sorted(customers)
        for listed in api.balance_transactions(customer)
    }


def coupon(api: StripeApi, coupon_id: str) -> dict[str, Any]:
    return plain(
        api.call(
            f"looking up coupon {coupon_id}",
            lambda: api.client.v1.coupons.retrieve(coupon_id),
        )
    )
