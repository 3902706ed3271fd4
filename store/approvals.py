"""Approvals of costly rewards (the ``approvals`` table, migration 0013): SQL only.

Dispatch asks (``request``, in the transaction that reserves the budget and moves the
action to ``awaiting_approval``); a person decides (``decide``: the decision is written only
while there is none, so two deciders never both win); the night expires what waited too
long (``due``). Set-based: one statement per batch of actions, never one per member. The
use cases (what a decision does to the action and the ledger) are ``night.approvals``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from store.outbox import naive_utc
from store.schema import actions, approvals, members

DECISIONS = ("approved", "rejected", "expired")
_P = approvals.c
_A = actions.c


@dataclass(frozen=True)
class Approval:
    """One approval with its action: what a person needs to decide."""

    action_id: str
    campaign_id: str
    member_id: str
    as_of: date  # the night that planned it
    state: str  # the action's state
    reward_kind: str | None
    cost_minor: int
    currency: str | None
    threshold: str
    requested_at: datetime  # aware, UTC
    expires_at: datetime
    decision: str | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "campaign_id": self.campaign_id,
            "member_id": self.member_id,
            "as_of": self.as_of.isoformat(),
            "state": self.state,
            "reward": self.reward_kind,
            "cost_minor": self.cost_minor,
            "currency": self.currency,
            "threshold": self.threshold,
            "requested_at": self.requested_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "decision": self.decision,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "reason": self.reason,
        }


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def request(
    connection: Connection,
    action_id: str,
    threshold: str,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Record that the action waits for a decision (call in the transaction that moved it to
    ``awaiting_approval``, so the two commit together)."""
    connection.execute(
        approvals.insert().values(
            action_id=action_id,
            threshold=threshold,
            requested_at=naive_utc(now),
            expires_at=naive_utc(expires_at),
        )
    )


def decide(
    connection: Connection,
    action_ids: Sequence[str],
    decision: str,
    by: str,
    now: datetime,
    reasons: dict[str, str] | None = None,
    *,
    unexpired: bool = False,
) -> list[str]:
    """Write ``decision`` on those of the actions still undecided (and, ``unexpired``, not
    past their ``expires_at``), in one statement per reason; the ids decided now (an id
    decided before, by anyone, is left as it was: on PostgreSQL a racing writer waits for
    the row and then finds it decided)."""
    assert decision in DECISIONS
    decided: list[str] = []
    groups: dict[str | None, list[str]] = {}
    for action_id in dict.fromkeys(action_ids):
        groups.setdefault((reasons or {}).get(action_id), []).append(action_id)
    for reason, ids in groups.items():
        late = [_P.expires_at > naive_utc(now)] if unexpired else []
        result = connection.execute(
            update(approvals)
            .where(_P.action_id.in_(ids), _P.decision.is_(None), *late)
            .values(decision=decision, decided_by=by, decided_at=naive_utc(now), reason=reason)
            .returning(_P.action_id)
        )
        decided.extend(row[0] for row in result)
    return decided


def move_decided(
    connection: Connection, action_ids: Sequence[str], to_state: str, now: datetime
) -> list[str]:
    """Move those of the actions still ``awaiting_approval`` to ``to_state`` (one
    statement); the ids moved. ``rejected`` records the decision's reason on the action."""
    if not action_ids:
        return []
    stamp = naive_utc(now)
    values: dict[str, Any] = {"state": to_state, "updated_at": stamp}
    if to_state == "reserved":
        values["reserved_at"] = stamp
    else:
        reason = (
            select(_P.decision + " by " + _P.decided_by + ": " + _P.reason)
            .where(_P.action_id == _A.action_id)
            .scalar_subquery()
        )
        values.update(finished_at=stamp, reason=reason)
    result = connection.execute(
        update(actions)
        .where(_A.action_id.in_(list(action_ids)), _A.state == "awaiting_approval")
        .values(**values)
        .returning(_A.action_id)
    )
    return [row[0] for row in result]


def due(connection: Connection, now: datetime, limit: int | None = None) -> list[str]:
    """Undecided approvals whose time ran out by ``now``, oldest first."""
    query = (
        select(_P.action_id)
        .join(actions, _A.action_id == _P.action_id)
        .where(
            _P.decision.is_(None),
            _P.expires_at <= naive_utc(now),
            _A.state == "awaiting_approval",
        )
        .order_by(_P.expires_at, _P.action_id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [row[0] for row in connection.execute(query)]


def find(
    connection: Connection,
    *,
    action_ids: Sequence[str] | None = None,
    waiting: bool = False,
    member_id: str | None = None,
    campaign_id: str | None = None,
) -> list[Approval]:
    """Approvals with their actions: the given ids, or those still waiting (``waiting``),
    or all; oldest request first."""
    query = (
        select(
            _P.action_id,
            _A.campaign_id,
            members.c.member_id,
            _A.as_of,
            _A.state,
            _A.reward,
            _A.cost_minor,
            _A.currency,
            _P.threshold,
            _P.requested_at,
            _P.expires_at,
            _P.decision,
            _P.decided_by,
            _P.decided_at,
            _P.reason,
        )
        .join(actions, _A.action_id == _P.action_id)
        .join(members, members.c.id == _A.member_pk)
        .order_by(_P.requested_at, _P.action_id)
    )
    if action_ids is not None:
        query = query.where(_P.action_id.in_(list(action_ids)))
    if waiting:
        query = query.where(_P.decision.is_(None), _A.state == "awaiting_approval")
    if member_id is not None:
        query = query.where(members.c.member_id == member_id)
    if campaign_id is not None:
        query = query.where(_A.campaign_id == campaign_id)
    found = []
    for row in connection.execute(query).mappings():
        requested, expires = _aware(row["requested_at"]), _aware(row["expires_at"])
        assert requested is not None and expires is not None
        found.append(
            Approval(
                action_id=row["action_id"],
                campaign_id=row["campaign_id"],
                member_id=row["member_id"],
                as_of=row["as_of"],
                state=row["state"],
                reward_kind=(row["reward"] or {}).get("kind"),
                cost_minor=int(row["cost_minor"]),
                currency=row["currency"],
                threshold=row["threshold"],
                requested_at=requested,
                expires_at=expires,
                decision=row["decision"],
                decided_by=row["decided_by"],
                decided_at=_aware(row["decided_at"]),
                reason=row["reason"],
            )
        )
    return found


def waiting_count(connection: Connection) -> int:
    """How many approvals wait for a decision."""
    query = (
        select(func.count())
        .select_from(approvals)
        .join(actions, _A.action_id == _P.action_id)
        .where(_P.decision.is_(None), _A.state == "awaiting_approval")
    )
    return int(connection.execute(query).scalar_one())
