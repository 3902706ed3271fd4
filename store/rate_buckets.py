"""Shared rate limits: one row per provider holding the next instant at which a request may
go, on the database's clock, so every process that shares the database keeps to the rate
together (a token bucket of one token: the generic cell rate algorithm).

Taking a slot is one statement: the row's ``next_at`` moves to ``max(next_at, now) +
interval`` and the caller waits until the slot it took (``max(next_at, now)``). The row
lock serialises the takers for the statement's duration only; the waiting happens outside
any transaction. A server's ``Retry-After`` pushes ``next_at`` for everyone (``hold``).
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# One UPDATE; ``clock_timestamp()`` (not ``now()``): the instant of the statement itself.
_TAKE = text(
    """
    WITH now AS (SELECT EXTRACT(EPOCH FROM clock_timestamp())::float8 AS t)
    UPDATE rate_buckets SET next_at = GREATEST(rate_buckets.next_at, now.t) + :interval
    FROM now WHERE rate_buckets.name = :name
    RETURNING rate_buckets.next_at - :interval - now.t
    """
)
_CREATE = text(
    "INSERT INTO rate_buckets (name, next_at) VALUES (:name, 0) ON CONFLICT (name) DO NOTHING"
)
_HOLD = text(
    """
    UPDATE rate_buckets
    SET next_at = GREATEST(next_at, EXTRACT(EPOCH FROM clock_timestamp())::float8 + :seconds)
    WHERE name = :name
    """
)


def take_slot(connection: Connection, name: str, interval: float) -> float:
    """Take the next slot of bucket ``name`` (requests ``interval`` seconds apart); return
    how many seconds to wait before using it (PostgreSQL; commit right after)."""
    wait = connection.execute(_TAKE, {"name": name, "interval": interval}).scalar()
    if wait is None:  # the first request of this bucket ever
        connection.execute(_CREATE, {"name": name})
        wait = connection.execute(_TAKE, {"name": name, "interval": interval}).scalar_one()
    return max(0.0, float(wait))


def hold(connection: Connection, name: str, seconds: float) -> None:
    """Give out no slot of bucket ``name`` for ``seconds`` from now."""
    connection.execute(_HOLD, {"name": name, "seconds": max(0.0, seconds)})
