"""The dispatch outbox: the ``actions`` table read and moved as a state machine.

::

    planned ─► reserved ─► reward_issued ─► sending ─► sent
       │          │              │             └────► unknown   (crashed while sending)
       └──────────┴──────────────┴─► failed                     (permanent, with a reason)
       └─► awaiting_approval ─► reserved                        (approved by a person)
                 └────────────► rejected                        (rejected, or expired)
    held_out                                                    (control group: no effects)

Actions without a reward go from ``planned`` straight to ``sending``; a reward above its
campaign's ``approval_above`` is reserved and then waits in ``awaiting_approval``, which no
dispatcher touches (``store.approvals`` and ``night.approvals`` decide it). Every move is a
conditional ``UPDATE … WHERE state IN (…)`` committed before the next outside call, so a
crash leaves each action in the last state that is known to be true, and two writers can
never both make the same move. ``PENDING`` are the states a dispatcher continues from;
``TERMINAL`` the states it never touches again (``unknown`` only by ``resolve``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Update, bindparam, case, false, func, select, union_all, update

from nudgeflow.timeutil import to_epoch
from store.consent import withdrawn_by_events
from store.preferences import left_category_now, paused_now
from store.schema import actions, approvals, members, profiles

PENDING = ("planned", "reserved", "reward_issued")
TERMINAL = ("sent", "failed", "held_out", "unknown", "rejected")
WAITING = "awaiting_approval"  # reserved, waiting for a person's decision (not pending)
# In the order reached.
STATES = (
    "planned",
    WAITING,
    "reserved",
    "reward_issued",
    "sending",
    "sent",
    "held_out",
    "failed",
    "rejected",
    "unknown",
)
# Which column records when each state was reached.
STAMPS = {
    "reserved": "reserved_at",
    WAITING: "reserved_at",
    "rejected": "finished_at",
    "reward_issued": "issued_at",
    "sending": "sending_at",
    "sent": "sent_at",
    "failed": "finished_at",
    "unknown": "finished_at",
}


def naive_utc(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now


@dataclass(frozen=True)
class OutboxAction:
    """One action with what dispatching it needs: the member, their profile, their consent."""

    action_id: str
    campaign_id: str
    member_pk: int
    as_of: date
    state: str
    reward: dict[str, Any] | None
    cost_minor: int
    currency: str | None
    template: str
    reward_ref: str | None
    attempts: int
    member: dict[str, Any]  # member_id, email, names, country, timezone, attributes, …
    # False: opted out, unsubscribed, bounced or complained since planning, or (in the
    # preference centre) paused every nudge or left the campaign's category
    consent: bool
    # With email consent given, the preference that stops the email: "paused" or
    # "category:<name>"; None otherwise
    preference: str | None = None
    variant: str | None = None  # the A/B/n variant planned (its template is ``template``)


def pending_ids(connection: Connection, as_of: date) -> list[str]:
    """The night's actions that still have work to do, and those of earlier nights a person
    approved since (``store.approvals``), in a stable order. Two index scans of the pending
    states in one statement (an ``OR`` of the two made SQLite scan every night's actions;
    starting from the approvals would read every approval ever granted)."""
    a, p = actions.c, approvals.c
    columns = (a.action_id, a.as_of, a.campaign_id, a.member_pk)
    tonight = select(*columns).where(a.as_of == as_of, a.state.in_(PENDING))
    granted = (
        select(p.action_id).where(p.action_id == a.action_id, p.decision == "approved").exists()
    )
    approved = select(*columns).where(a.as_of < as_of, a.state.in_(PENDING), granted)
    both = union_all(tonight, approved).subquery()
    query = select(both.c.action_id).order_by(both.c.as_of, both.c.campaign_id, both.c.member_pk)
    return [row[0] for row in connection.execute(query)]


def load(
    connection: Connection,
    action_ids: Sequence[str],
    *,
    now: datetime,
    categories: Mapping[str, str | None] | None = None,
) -> list[OutboxAction]:
    """The given actions, joined with their members, profiles and consent as of ``now``, in
    one query. Consent includes the preference centre: a pause in force at ``now``, and the
    category of the action's campaign (``categories``: campaign id → its category) left."""
    if not action_ids:
        return []
    a, m, p = actions.c, members.c, profiles.c
    withdrawn = withdrawn_by_events(a.member_pk)
    paused = paused_now(a.member_pk, to_epoch(now))
    named = {cid: category for cid, category in (categories or {}).items() if category}
    left = (
        left_category_now(a.member_pk, case(named, value=a.campaign_id, else_=None))
        if named
        else false()
    )
    query = (
        select(
            a.action_id,
            a.campaign_id,
            a.member_pk,
            a.as_of,
            a.state,
            a.reward,
            a.cost_minor,
            a.currency,
            a.template,
            a.variant,
            a.reward_ref,
            a.attempts,
            m.member_id,
            m.email,
            m.first_name,
            m.last_name,
            m.country,
            m.timezone,
            m.stripe_customer_id,
            m.attributes,
            m.email_opt_in,
            p.stage,
            p.score,
            withdrawn.label("withdrawn"),
            paused.label("paused"),
            left.label("left"),
        )
        .join(members, m.id == a.member_pk)
        .outerjoin(profiles, p.member_pk == a.member_pk)
        .where(a.action_id.in_(list(action_ids)))
    )
    found = {}
    for row in connection.execute(query).mappings():
        given = bool(row["email_opt_in"]) and not row["withdrawn"]
        preference = None
        if row["paused"]:
            preference = "paused"
        elif row["left"]:
            preference = f"category:{named[row['campaign_id']]}"
        member = {
            "member_id": row["member_id"],
            "email": row["email"],
            "first_name": row["first_name"],
            "last_name": row["last_name"],
            "country": row["country"],
            "timezone": row["timezone"],
            "stripe_customer_id": row["stripe_customer_id"],
            "attributes": dict(row["attributes"] or {}),
            "stage": row["stage"],
            "score": row["score"],
        }
        found[row["action_id"]] = OutboxAction(
            action_id=row["action_id"],
            campaign_id=row["campaign_id"],
            member_pk=row["member_pk"],
            as_of=row["as_of"],
            state=row["state"],
            reward=row["reward"],
            cost_minor=int(row["cost_minor"]),
            currency=row["currency"],
            template=row["template"],
            reward_ref=row["reward_ref"],
            attempts=int(row["attempts"]),
            member=member,
            consent=given and preference is None,
            preference=preference if given else None,
            variant=row["variant"],
        )
    return [found[i] for i in action_ids if i in found]


def move(
    connection: Connection,
    action_id: str,
    from_states: Sequence[str],
    to_state: str,
    now: datetime,
    **values: Any,
) -> bool:
    """Move one action to ``to_state`` if it is in one of ``from_states``; True when moved.

    The state column is the guard: a move that lost a race (or repeats after a crash)
    changes nothing and returns False.
    """
    stamp = naive_utc(now)
    changes: dict[str, Any] = {"state": to_state, "updated_at": stamp, **values}
    if to_state in STAMPS:
        changes.setdefault(STAMPS[to_state], stamp)
    statement = _move_statement(tuple(from_states), tuple(sorted(changes)))
    parameters = {f"new_{column}": value for column, value in changes.items()}
    result = connection.execute(statement, {"moved_action_id": action_id, **parameters})
    return result.rowcount == 1


@lru_cache(maxsize=128)
def _move_statement(from_states: tuple[str, ...], columns: tuple[str, ...]) -> Update:
    """The ``UPDATE`` of a move, built once per shape (dispatch makes two per email:
    building and keying a statement costs more than running it)."""
    return (
        update(actions)
        .where(
            actions.c.action_id == bindparam("moved_action_id"),
            actions.c.state.in_(from_states),
        )
        .values({column: bindparam(f"new_{column}") for column in columns})
    )


def begin_attempt(connection: Connection, action_ids: Sequence[str]) -> None:
    """Count one more dispatch attempt for each of the actions (one statement)."""
    if action_ids:
        connection.execute(
            update(actions)
            .where(actions.c.action_id.in_(list(action_ids)))
            .values(attempts=actions.c.attempts + 1)
        )


def sending_to_unknown(
    connection: Connection, now: datetime, action_ids: Sequence[str] | None = None
) -> int:
    """Actions left in ``sending`` by a run that died: the email may or may not have gone,
    and email has no idempotency key, so they become ``unknown`` instead of being re-sent.
    Only call this while holding the run lease (no other dispatcher is sending), or, for
    ``action_ids``, the claim of their batch taken over from a worker that stopped."""
    stamp = naive_utc(now)
    scope = [actions.c.action_id.in_(list(action_ids))] if action_ids is not None else []
    result = connection.execute(
        update(actions)
        .where(actions.c.state == "sending", *scope)
        .values(
            state="unknown",
            reason="the run stopped between sending and recording the answer: the email "
            "may have gone; check the provider, then `nudgeflow actions resolve`",
            updated_at=stamp,
            finished_at=stamp,
        )
    )
    return int(result.rowcount or 0)


def state_counts(connection: Connection, as_of: date) -> dict[tuple[str, str], int]:
    """(campaign, state) → number of the night's actions."""
    a = actions.c
    query = (
        select(a.campaign_id, a.state, func.count())
        .where(a.as_of == as_of)
        .group_by(a.campaign_id, a.state)
    )
    return {(c, s): int(n) for c, s, n in connection.execute(query)}
