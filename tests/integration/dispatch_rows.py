"""Actions in every dispatch state and a few runs, written straight into the store (no
planner, no dispatcher), for the report tests."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from store.schema import actions, members, runs

_CREATED = datetime(2026, 6, 29, 22, 0, 0)
MEMBERS = ("ann", "bob", "cat", "dan")
AS_OF = date(2026, 6, 30)
SUMMARY = {
    "members": 4,
    "plan": {"campaigns": [{"id": "winback", "selected": 3, "held_out": 1}]},
    "dispatch": {
        "campaigns": [
            {"id": "winback", "sent": 1, "failed": 0, "unknown": 1, "held_out": 1},
            {"id": "thanks", "sent": 0, "failed": 2, "unknown": 0, "held_out": 0},
        ],
        "totals": {"sent": 1, "failed": 2, "unknown": 1, "held_out": 1, "rewards_issued": 2},
    },
}


def _action_id(campaign_id: str, member_id: str, as_of: date) -> str:
    return hashlib.md5(f"{campaign_id}|{member_id}|{as_of}".encode()).hexdigest()


def at(day: date, hour: int, minute: int = 0) -> datetime:
    """A naive UTC instant, as the store keeps them."""
    return datetime(day.year, day.month, day.day, hour, minute)


def action(
    keys: dict[str, int], campaign_id: str, member_id: str, as_of: date, state: str, **extra: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "action_id": _action_id(campaign_id, member_id, as_of),
        "campaign_id": campaign_id,
        "member_pk": keys[member_id],
        "occurrence": as_of.isoformat(),
        "as_of": as_of,
        "state": state,
        "holdout": state == "held_out",
        "reward": {"kind": "credit", "amount": "5.00", "currency": "USD"},
        "cost_minor": 500,
        "currency": "USD",
        "template": campaign_id,
        "response_types": ["purchase"],
        "response_from": 0,
        "response_until": 0,
        "created_at": _CREATED,
        "updated_at": _CREATED,
        "reason": None,
        "reward_ref": None,
        "message_id": None,
        "attempts": 0,
        "reserved_at": None,
        "issued_at": None,
        "sending_at": None,
        "sent_at": None,
        "finished_at": None,
    }
    row.update(extra)
    return row


def insert_members(connection: sa.Connection) -> dict[str, int]:
    connection.execute(
        sa.insert(members),
        [
            {
                "member_id": m,
                "email": f"{m}@example.com",
                "email_opt_in": True,
                "row_hash": "-",
                "created_at": _CREATED,
                "updated_at": _CREATED,
            }
            for m in MEMBERS
        ],
    )
    rows = connection.execute(sa.select(members.c.member_id, members.c.id)).all()
    return {member_id: int(pk) for member_id, pk in rows}


def insert_dispatched(connection: sa.Connection) -> dict[str, int]:
    """Nine actions over three nights in every state; returns member_id → key.

    Sends are the four that reached ``sending``: winback/cat (sent), winback/dan (unknown),
    thanks/ann (failed while sending) on 06-30, and thanks/cat (sending) on 07-01.
    """
    keys = insert_members(connection)
    before, after = date(2026, 6, 29), date(2026, 7, 1)
    sending = {"attempts": 1, "reserved_at": at(AS_OF, 22), "issued_at": at(AS_OF, 22, 1)}
    rows = [
        action(keys, "winback", "ann", before, "planned"),
        action(keys, "winback", "bob", before, "held_out", cost_minor=0, reward=None),
        action(
            keys,
            "winback",
            "cat",
            AS_OF,
            "sent",
            **sending,
            reward_ref="promo_cat",
            message_id="sg-cat",
            sending_at=at(AS_OF, 22, 5),
            sent_at=at(AS_OF, 22, 6),
            finished_at=at(AS_OF, 22, 6),
        ),
        action(
            keys,
            "winback",
            "dan",
            AS_OF,
            "unknown",
            **sending,
            reward_ref="promo_dan",
            sending_at=at(AS_OF, 22, 2),
            reason="crashed while sending",
        ),
        action(
            keys,
            "thanks",
            "ann",
            AS_OF,
            "failed",
            **sending,
            sending_at=at(AS_OF, 22, 3),
            finished_at=at(AS_OF, 22, 4),
            reason="SendError: 400 invalid address",
        ),
        action(
            keys,
            "thanks",
            "bob",
            AS_OF,
            "failed",
            attempts=1,
            reserved_at=at(AS_OF, 22),
            finished_at=at(AS_OF, 22, 1),
            reason="RewardError: card declined",
        ),
        action(keys, "thanks", "cat", after, "sending", **sending, sending_at=at(after, 22)),
        action(keys, "thanks", "dan", after, "reward_issued", reward_ref="promo_dan2"),
        action(keys, "birthday", "ann", after, "reserved", reserved_at=at(after, 21)),
    ]
    connection.execute(sa.insert(actions), rows)
    return keys


def insert_runs(connection: sa.Connection) -> None:
    """Four runs: an old one without dispatch counts, a completed one with them, a failed
    one, and one still running (started last)."""
    defaults = {"finished_at": None, "flow_run_id": None, "summary": None, "error": None}
    rows = [
        {
            "as_of": date(2026, 6, 29),
            "kind": "nightly",
            "status": "completed",
            "started_at": at(date(2026, 6, 30), 1),
            "finished_at": at(date(2026, 6, 30), 1, 2),
            "summary": {"plan": {"campaigns": [{"id": "winback", "selected": 1}]}},
        },
        {
            "as_of": AS_OF,
            "kind": "nightly",
            "status": "completed",
            "started_at": at(date(2026, 7, 1), 1),
            "finished_at": datetime(2026, 7, 1, 1, 0, 42, 500_000),
            "flow_run_id": "flow-630",
            "summary": SUMMARY,
        },
        {
            "as_of": date(2026, 7, 1),
            "kind": "nightly",
            "status": "failed",
            "started_at": at(date(2026, 7, 2), 1),
            "finished_at": at(date(2026, 7, 2), 2, 30),
            "error": "StoreError: the database went away",
        },
        {
            "as_of": date(2026, 7, 2),
            "kind": "nightly",
            "status": "running",
            "started_at": at(date(2026, 7, 3), 1),
        },
    ]
    connection.execute(sa.insert(runs), [{**defaults, **row} for row in rows])
