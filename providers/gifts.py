"""Gifts: fulfilment requests for the team that ships them.

Issuing a gift writes one ``gifts`` row per action with the item, its cost and the member's
postal address as it is today. ``export_gifts`` lists them (CSV or JSON, for a spreadsheet
or a fulfilment partner; in CSV, cells a spreadsheet would run as formulas are neutralised)
and ``mark_shipped`` records what was sent; both are idempotent.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.campaign import Campaign, Reward
from nudgeflow.errors import RewardError
from nudgeflow.money import Money, format_minor_units
from nudgeflow.spreadsheet import csv_dict_writer
from providers.rewards import IssuedReward, RewardMember, utc_now
from store.engine import write_transaction
from store.reward_tables import gifts, naive_utc, set_reward_state
from store.schema import members

ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "postal_code", "region", "country")
REQUIRED_ADDRESS = ("address_line1", "city", "postal_code", "country")
EXPORT_COLUMNS = (
    "id",
    "action_id",
    "campaign_id",
    "member_id",
    "recipient",
    "email",
    "item",
    "cost",
    "currency",
    *ADDRESS_FIELDS,
    "status",
    "requested_at",
    "shipped_at",
    "tracking",
)


def _issued(row: sa.Row[Any]) -> IssuedReward:
    return IssuedReward(
        provider="gift",
        provider_ref=f"gift-{row.id}",
        code=None,
        value_text=row.item,
        expires_at=None,
        link=None,
        action_id=row.action_id,
        kind="gift",
        amount=Money(row.cost_minor, row.currency),
    )


class GiftIssuer:
    """``RewardIssuer`` for gifts: the provider is our own ``gifts`` table."""

    provider = "gift"

    def __init__(self, engine: sa.Engine, clock: Callable[[], datetime] = utc_now) -> None:
        self.engine = engine
        self._clock = clock

    def issue(
        self,
        action_id: str,
        campaign: Campaign,
        reward: Reward,
        member: RewardMember,
        *,
        first_attempt: bool = False,
    ) -> IssuedReward:
        # Looked for even on a first attempt: a local query, and the insert below would
        # refuse a second row for the action anyway.
        found = self.find(action_id, campaign, reward, member)
        if found is not None:
            return found
        if reward.kind != "gift" or reward.item is None or reward.cost is None:
            raise RewardError(f"the gift issuer cannot issue a {reward.kind} reward")
        address = {name: (member.attributes.get(name) or "").strip() for name in ADDRESS_FIELDS}
        missing = [name for name in REQUIRED_ADDRESS if not address[name]]
        if missing:
            raise RewardError(
                f"member {member.member_id} has no postal address for a gift "
                f"(missing {', '.join(missing)})"
            )
        recipient = " ".join(p for p in (member.first_name, member.last_name) if p) or None
        with write_transaction(self.engine) as connection:
            connection.execute(
                sa.insert(gifts).values(
                    action_id=action_id,
                    campaign_id=campaign.id,
                    member_pk=member.member_pk,
                    item=reward.item,
                    cost_minor=reward.cost.amount_minor,
                    currency=reward.cost.currency,
                    recipient=recipient,
                    email=member.email,
                    status="pending",
                    created_at=naive_utc(self._clock()),
                    **{name: value or None for name, value in address.items()},
                )
            )
        found = self.find(action_id, campaign, reward, member)
        assert found is not None
        return found

    def find(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(gifts).where(gifts.c.action_id == action_id)).first()
        return _issued(row) if row is not None else None

    def deactivate(self, issued: IssuedReward) -> None:
        """Cancel a gift that has not shipped yet (a shipped parcel cannot be recalled)."""
        with write_transaction(self.engine) as connection:
            connection.execute(
                sa.update(gifts)
                .where(gifts.c.action_id == issued.action_id, gifts.c.status == "pending")
                .values(status="cancelled")
            )


# -- export and shipping --------------------------------------------------------------------


def list_gifts(connection: sa.Connection, status: str | None = None) -> list[dict[str, Any]]:
    query = (
        sa.select(gifts, members.c.member_id)
        .join(members, members.c.id == gifts.c.member_pk)
        .order_by(gifts.c.id)
    )
    if status is not None:
        query = query.where(gifts.c.status == status)
    rows = []
    for row in connection.execute(query):
        m = row._mapping
        rows.append(
            {
                "id": m["id"],
                "action_id": m["action_id"],
                "campaign_id": m["campaign_id"],
                "member_id": m["member_id"],
                "recipient": m["recipient"],
                "email": m["email"],
                "item": m["item"],
                "cost": format_minor_units(m["cost_minor"], m["currency"]),
                "currency": m["currency"],
                **{name: m[name] for name in ADDRESS_FIELDS},
                "status": m["status"],
                "requested_at": m["created_at"].isoformat() if m["created_at"] else None,
                "shipped_at": m["shipped_at"].isoformat() if m["shipped_at"] else None,
                "tracking": m["tracking"],
            }
        )
    return rows


def format_gifts(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    out = io.StringIO()
    writer = csv_dict_writer(out, EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


@dataclass(frozen=True)
class ShippingResult:
    shipped: list[int]  # newly marked
    already: list[int]  # shipped before: nothing changed
    unknown: list[int]  # no such gift
    cancelled: list[int]  # withdrawn gifts cannot ship


def read_shipping_file(text: str) -> dict[int, str | None]:
    """Gift ids (and tracking numbers, when the file has a ``tracking`` column) from a CSV
    with an ``id`` column — typically the export, filled in by the shipping team."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "id" not in [f.strip() for f in reader.fieldnames]:
        raise RewardError("the shipping file needs an 'id' column (the gift ids of the export)")
    result: dict[int, str | None] = {}
    for line, row in enumerate(reader, start=2):
        clean = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if not clean.get("id"):
            continue
        try:
            gift_id = int(clean["id"])
        except ValueError:
            raise RewardError(f"line {line}: id {clean['id']!r} is not a gift id") from None
        result[gift_id] = clean.get("tracking") or None
    return result


def mark_shipped(
    connection: sa.Connection,
    shipments: dict[int, str | None] | Iterable[int],
    now: datetime,
) -> ShippingResult:
    """Mark pending gifts shipped (with tracking when known), and spend each one's item cost
    in the ledger (outstanding → spent). Gifts already shipped are left alone, so running the
    same file twice changes nothing. Run it in ``store.ledger.ledger_transaction``."""
    from store import ledger

    wanted = shipments if isinstance(shipments, dict) else dict.fromkeys(shipments)
    found = {
        row.id: row
        for row in connection.execute(
            sa.select(
                gifts.c.id, gifts.c.status, gifts.c.action_id, gifts.c.cost_minor, gifts.c.currency
            ).where(gifts.c.id.in_(list(wanted)))
        )
    }
    rows = {gift_id: row.status for gift_id, row in found.items()}
    shipped, already, unknown, cancelled = [], [], [], []
    for gift_id in sorted(wanted):
        status = rows.get(gift_id)
        if status is None:
            unknown.append(gift_id)
        elif status == "shipped":
            already.append(gift_id)
        elif status == "cancelled":
            cancelled.append(gift_id)
        else:
            connection.execute(
                sa.update(gifts)
                .where(gifts.c.id == gift_id, gifts.c.status == "pending")
                .values(status="shipped", shipped_at=naive_utc(now), tracking=wanted[gift_id])
            )
            gift = found[gift_id]
            if ledger.reward_state(connection, gift.action_id) == "outstanding":
                cost = Money(int(gift.cost_minor), gift.currency)
                ledger.redeem(connection, gift.action_id, cost, f"gift {gift_id}", now=now)
                set_reward_state(connection, gift.action_id, "redeemed", now)
            shipped.append(gift_id)
    return ShippingResult(shipped, already, unknown, cancelled)
