"""Reward tables (migration 0004) and the small queries on them.

``rewards``: one row per issued reward, whatever its kind and provider — the local record the
redemption sync, expiry and ``ledger reconcile`` work from. ``gifts``: fulfilment requests
for the team that ships them. ``sync_cursors``: how far each provider's event feed has been
read.

Instants are epoch seconds (UTC) like the other hot tables; bookkeeping stamps are naive
UTC ``DateTime``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from store.metadata import metadata
from store.schema import members

rewards = Table(
    "rewards",
    metadata,
    Column("action_id", String(32), primary_key=True),
    Column("campaign_id", String(64), nullable=False),
    Column("member_pk", Integer, ForeignKey("members.id"), nullable=False),
    Column("kind", String(16), nullable=False),  # discount | credit | gift | vip_invite
    Column("provider", String(16), nullable=False),  # local | stripe | gift | invite
    Column("provider_ref", String(200), nullable=False),
    Column("code", String(64)),
    Column("value_text", String(200), nullable=False),
    Column("amount_minor", BigInteger),  # face value or cost; None for a free reward
    Column("percent_off", Float),
    Column("currency", String(3)),
    Column("customer", String(200)),  # the Stripe customer
    Column("coupon_id", String(200)),  # the Stripe coupon behind a promotion code
    Column("link", Text),
    Column("expires_at", BigInteger),  # epoch s
    Column("state", String(16), nullable=False),  # issued | redeemed | expired | deactivated
    Column("discount_id", String(200)),  # the Stripe discount the code turned into
    Column("redeemed_at", BigInteger),  # epoch s
    Column("redeemed_minor", BigInteger),  # the actual discount
    Column("redeemed_event", String(200)),  # the Stripe event that reported it
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Index("ix_rewards_provider_ref", "provider_ref"),
    Index("ix_rewards_discount_id", "discount_id"),
    Index("ix_rewards_state_expires_at", "state", "expires_at"),
)

gifts = Table(
    "gifts",
    metadata,
    Column("id", Integer, primary_key=True),  # what the shipping team quotes back
    Column("action_id", String(32), nullable=False, unique=True),
    Column("campaign_id", String(64), nullable=False),
    Column("member_pk", Integer, ForeignKey("members.id"), nullable=False),
    Column("item", String(200), nullable=False),
    Column("cost_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    # The address as it was when the gift was requested: a later import must not re-route
    # a parcel that may already be packed.
    Column("recipient", String(400)),
    Column("email", String(320)),
    Column("address_line1", String(200)),
    Column("address_line2", String(200)),
    Column("city", String(200)),
    Column("postal_code", String(32)),
    Column("region", String(200)),
    Column("country", String(64)),
    Column("status", String(16), nullable=False),  # pending | shipped | cancelled
    Column("created_at", DateTime, nullable=False),
    Column("shipped_at", DateTime),
    Column("tracking", String(200)),
    Index("ix_gifts_status", "status"),
)

sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("name", String(64), primary_key=True),  # e.g. stripe_events
    Column("created", BigInteger, nullable=False),  # epoch s of the last event read
    Column("last_id", String(200)),
    Column("updated_at", DateTime, nullable=False),
)


def naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def get_reward(connection: sa.Connection, action_id: str) -> sa.Row[Any] | None:
    return connection.execute(sa.select(rewards).where(rewards.c.action_id == action_id)).first()


def record_reward(connection: sa.Connection, *, now: datetime, **values: Any) -> bool:
    """Insert the reward unless the action already has one; return whether it was new."""
    if get_reward(connection, values["action_id"]) is not None:
        return False
    stamp = naive_utc(now)
    connection.execute(
        sa.insert(rewards).values(state="issued", created_at=stamp, updated_at=stamp, **values)
    )
    return True


def set_reward_state(
    connection: sa.Connection, action_id: str, state: str, now: datetime, **values: Any
) -> None:
    connection.execute(
        sa.update(rewards)
        .where(rewards.c.action_id == action_id)
        .values(state=state, updated_at=naive_utc(now), **values)
    )


def load_member(connection: sa.Connection, member_pk: int) -> sa.Row[Any] | None:
    return connection.execute(sa.select(members).where(members.c.id == member_pk)).first()


def get_cursor(connection: sa.Connection, name: str) -> tuple[int, str | None]:
    row = connection.execute(
        sa.select(sync_cursors.c.created, sync_cursors.c.last_id).where(sync_cursors.c.name == name)
    ).first()
    return (int(row.created), row.last_id) if row is not None else (0, None)


def set_cursor(
    connection: sa.Connection, name: str, created: int, last_id: str | None, now: datetime
) -> None:
    values = {"created": created, "last_id": last_id, "updated_at": naive_utc(now)}
    updated = connection.execute(
        sa.update(sync_cursors).where(sync_cursors.c.name == name).values(**values)
    )
    if updated.rowcount == 0:
        connection.execute(sa.insert(sync_cursors).values(name=name, **values))
