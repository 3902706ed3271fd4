"""SendGrid's Event Webhook batches, worked from the inbox: each event tied to our action
through the ``custom_args`` every email carries (``action_id``, ``campaign_id``, which
SendGrid echoes as top-level keys of each event) and recorded once.

- ``delivered``, ``open``, ``click`` → member events ``email_delivered``, ``email_opened``,
  ``email_clicked`` (properties: action_id, campaign_id, and the url of a click), with the
  event id ``sendgrid:`` + SendGrid's ``sg_event_id``: a redelivered event inserts nothing;
- ``bounce``, ``dropped`` → ``email_bounced``; ``spamreport`` → ``email_spam_report``: they
  withdraw consent (``store.consent.CONSENT_EVENTS``), keyed the same way;
- ``unsubscribe``, ``group_unsubscribe`` → ``delivery.unsubscribe.apply_unsubscribe``, as a
  click on the unsubscribe link would (``unsubscribed`` once, ``email_opt_in`` false).

Events without our ``action_id``, for an action we do not know, or of a type we do not act
on (``processed``, ``deferred``…) are counted and skipped. A batch of inbox rows costs one
query for the actions it names and one INSERT for its events, whatever its size.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from delivery.tokens import UnsubscribeToken
from delivery.unsubscribe import apply_unsubscribe
from store.importer.statements import in_keys, keys_param
from store.inbox import claim_keys
from store.schema import actions, events, members

MEMBER_EVENTS = {
    "delivered": "email_delivered",
    "open": "email_opened",
    "click": "email_clicked",
    "bounce": "email_bounced",
    "dropped": "email_bounced",
    "spamreport": "email_spam_report",
}
UNSUBSCRIBES = ("unsubscribe", "group_unsubscribe")
TEXT_LIMIT = 2000  # characters kept of a url or a reason


@dataclass
class SendGridOutcome:
    """What a batch of SendGrid events did."""

    recorded: int = 0  # member events inserted (new)
    repeated: int = 0  # events already recorded (SendGrid redelivers)
    unsubscribed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason → events

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def event_key(event: dict[str, Any]) -> str:
    """``sendgrid:`` + ``sg_event_id``; without one, a digest of the event itself, so that a
    redelivery of the same event still has the same key."""
    ident = event.get("sg_event_id")
    if isinstance(ident, str) and ident.strip() and len(ident) <= 180:
        return f"sendgrid:{ident.strip()}"
    canonical = json.dumps(event, sort_keys=True, ensure_ascii=False)
    return "sendgrid:sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _text(value: Any) -> str | None:
    if isinstance(value, str) and "\x00" not in value:
        stripped = value.strip()
        if stripped:
            return stripped[:TEXT_LIMIT]
    return None


def _occurred(event: dict[str, Any], fallback: int) -> int:
    stamp = event.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool) and 0 < stamp < 7e9:
        return int(stamp)
    return fallback


@dataclass
class PreparedEvents:
    """A batch of SendGrid events mapped to what they will write, not written yet."""

    outcome: SendGridOutcome  # the events skipped, and repeated within the batch
    rows: list[dict[str, Any]]  # member events to insert, one per key
    unsubscribes: list[tuple[UnsubscribeToken, int, str]]  # (token, occurred, key), one a member


def prepare_sendgrid_events(
    connection: Connection, batches: Sequence[tuple[list[dict[str, Any]], int]]
) -> PreparedEvents:
    """Map the events of ``batches`` (each: the events of one request, and when it was
    received, for events without a usable timestamp) to member events and unsubscribes.
    It only reads (the actions the events name), so the inbox worker runs it before its
    write transaction, outside SQLite's one write lock; ``write_sendgrid_events`` writes
    the result."""
    outcome = SendGridOutcome()
    wanted: list[tuple[dict[str, Any], str, int]] = []  # event, its action id, received
    for batch, received in batches:
        for event in batch:
            kind = event.get("event")
            action_id = _text(event.get("action_id"))
            if kind not in MEMBER_EVENTS and kind not in UNSUBSCRIBES:
                outcome.skip("not an event we act on")
            elif action_id is None:
                outcome.skip("no action_id")
            else:
                wanted.append((event, action_id, received))
    known = _actions(connection, sorted({action_id for _, action_id, _ in wanted}))
    rows: dict[str, dict[str, Any]] = {}
    unsubscribes: dict[str, tuple[UnsubscribeToken, int, str]] = {}  # by member_id: the first
    for event, action_id, received in wanted:
        found = known.get(action_id)
        if found is None:
            outcome.skip("unknown action")
            continue
        member_pk, member_id, campaign_id = found
        occurred = _occurred(event, received)
        if event["event"] in UNSUBSCRIBES:
            token = UnsubscribeToken(member_id, campaign_id)
            unsubscribes.setdefault(member_id, (token, occurred, event_key(event)))
            continue
        key = event_key(event)
        if key in rows:
            outcome.repeated += 1  # the same event twice in this batch
            continue
        properties: dict[str, Any] = {"action_id": action_id, "campaign_id": campaign_id}
        if event["event"] == "click" and (url := _text(event.get("url"))) is not None:
            properties["url"] = url
        elif event["event"] in ("bounce", "dropped"):
            properties["sendgrid_event"] = event["event"]
            if (reason := _text(event.get("reason"))) is not None:
                properties["reason"] = reason
        rows[key] = {
            "event_id": key,
            "member_pk": member_pk,
            "type": MEMBER_EVENTS[event["event"]],
            "occurred_at": occurred,
            "properties": properties,
        }
    return PreparedEvents(outcome, list(rows.values()), list(unsubscribes.values()))


def write_sendgrid_events(
    connection: Connection, prepared: PreparedEvents, *, now: int
) -> SendGridOutcome:
    """Write what ``prepare_sendgrid_events`` mapped, in the caller's write transaction (the
    member events whose keys are new, the unsubscribes not applied before; ``now``, epoch
    seconds, stamps the unsubscribes' keys); the batch's outcome."""
    outcome = replace(prepared.outcome, skipped=dict(prepared.outcome.skipped))
    inserted = _insert_new(connection, prepared.rows)
    outcome.recorded += inserted
    outcome.repeated += len(prepared.rows) - inserted
    # An unsubscribe takes effect once: redelivered after the member's consent was restored,
    # it must not withdraw it again. Its key is kept in inbox_keys; unsubscribes are rare, so
    # each one is applied on its own, exactly as a click on the link would be.
    new = claim_keys(connection, [key for _, _, key in prepared.unsubscribes], now)
    for token, occurred, key in prepared.unsubscribes:
        if key not in new:
            outcome.repeated += 1
            continue
        at = datetime.fromtimestamp(occurred, UTC)
        done = apply_unsubscribe(connection, token, at=at, source="sendgrid")
        outcome.unsubscribed += not done.already
    return outcome


def _actions(connection: Connection, action_ids: list[str]) -> dict[str, tuple[int, str, str]]:
    """action id → (member pk, member id, campaign id), for the ones we know."""
    if not action_ids:
        return {}
    found = connection.execute(
        sa.select(actions.c.action_id, actions.c.member_pk, members.c.member_id)
        .add_columns(actions.c.campaign_id)
        .join(members, members.c.id == actions.c.member_pk)
        .where(in_keys(connection, actions.c.action_id)),
        keys_param(connection, action_ids),
    ).all()
    return {str(a): (int(pk), str(mid), str(c)) for a, pk, mid, c in found}


# The events arrive as one JSON parameter and the database unpacks them: one statement that
# runs to its end in one step, instead of a row of parameters (and, on SQLite, a release of
# the GIL) per event. ON CONFLICT makes a redelivered event insert nothing.
_INSERT_SQLITE = sa.text(
    f"INSERT INTO {events.name} (event_id, member_pk, type, occurred_at, properties) "
    "SELECT json_extract(value, '$.event_id'), json_extract(value, '$.member_pk'), "
    "json_extract(value, '$.type'), json_extract(value, '$.occurred_at'), "
    "json_extract(value, '$.properties') "
    "FROM json_each(:rows) WHERE true ON CONFLICT (event_id) DO NOTHING"
)
_INSERT_POSTGRES = sa.text(
    f"INSERT INTO {events.name} (event_id, member_pk, type, occurred_at, properties) "
    "SELECT event_id, member_pk, type, occurred_at, properties "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS new(event_id text, member_pk integer, "
    "type text, occurred_at bigint, properties jsonb) "
    "ON CONFLICT (event_id) DO NOTHING"
)


def _insert_new(connection: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert the events whose ids are new; how many were."""
    if not rows:
        return 0
    statement = _INSERT_POSTGRES if connection.dialect.name == "postgresql" else _INSERT_SQLITE
    inserted = connection.execute(statement, {"rows": orjson.dumps(rows).decode()})
    return int(inserted.rowcount)
