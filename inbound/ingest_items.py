"""The ingestion API's items, in Segment's spec shape, checked the way an import checks its
rows (``store.rows``): each one becomes the event or member record an import would read, or
a reason, by its index in the request.

- ``track``: ``userId`` → member_id, ``event`` → type, ``timestamp`` → occurred_at (the time
  it was received when absent), ``messageId`` → event_id (a digest of the item when absent,
  so a retry of the same item is still the same event), ``properties`` → properties, of
  which ``amount`` (or ``revenue``) and ``currency`` become the event's amount.
- ``identify``: ``userId`` → member_id, ``traits`` → the member's columns (``email``,
  ``firstName``/``first_name``, ``lastName``/``last_name``, ``createdAt``/``joined_at``,
  ``birthday``, ``country``, ``timezone``, ``tags``, ``stripe_customer_id``,
  ``email_opt_in``), every other trait an attribute. ``email`` may be left out for a
  member we know; an identify never restores withdrawn consent (as an import never does).

A ``track`` for a member we do not know is rejected, unless an ``identify`` earlier in the
same request made them. Other Segment calls (page, screen, group, alias) are rejected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from store.importer.forgotten import ForgottenMembers, Returning
from store.importer.statements import in_keys, keys_param
from store.rows import RowError, parse_event, parse_member
from store.schema import members

TYPES = ("track", "identify")
# Segment's names for the fields of our records, to name them in a reason.
EVENT_FIELDS = {
    "event_id": "messageId",
    "member_id": "userId",
    "type": "event",
    "occurred_at": "timestamp",
    "amount": "properties.amount",
    "currency": "properties.currency",
    "properties": "properties",
}
TRAITS = {
    "firstName": "first_name",
    "lastName": "last_name",
    "createdAt": "joined_at",
    "stripeCustomerId": "stripe_customer_id",
    "emailOptIn": "email_opt_in",
}


@dataclass
class Checked:
    """A request's items: the accepted ones as stored in the inbox, the rejected by index."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "accepted": len(self.accepted),
            "rejected": len(self.rejected),
            "errors": [{"index": index, "reason": reason} for index, reason in self.rejected],
        }


def digest(item: Any) -> str:
    canonical = json.dumps(item, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _user_id(item: dict[str, Any]) -> str:
    user = item.get("userId")
    if isinstance(user, int) and not isinstance(user, bool):
        user = str(user)
    if not isinstance(user, str) or not user.strip():
        raise RowError("userId", "required (events without a userId are not stored)")
    return user.strip()


def _object(item: dict[str, Any], name: str) -> dict[str, Any]:
    value = item.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RowError(name, "expected an object")
    return dict(value)


def track_record(item: dict[str, Any], received_at: int) -> dict[str, Any]:
    """The event record of a ``track`` item (checked later by ``parse_event``)."""
    user = _user_id(item)
    properties = _object(item, "properties")
    amount = properties.pop("amount", None)
    if amount is None:
        amount = properties.pop("revenue", None)
    currency = properties.pop("currency", None) if amount is not None else None
    message_id = item.get("messageId")
    if message_id is not None and not isinstance(message_id, str):
        raise RowError("messageId", "expected a string")
    timestamp = item.get("timestamp")
    if timestamp is None:
        timestamp = datetime.fromtimestamp(received_at, UTC).isoformat()
    return {
        "event_id": message_id or "ingest:" + digest(item),
        "member_id": user,
        "type": item.get("event"),
        "occurred_at": timestamp,
        "amount": amount,
        "currency": currency,
        "properties": properties or None,
    }


def identify_record(item: dict[str, Any]) -> dict[str, Any]:
    """The member record of an ``identify`` item (checked later by ``parse_member``)."""
    record: dict[str, Any] = {"member_id": _user_id(item)}
    for name, value in _object(item, "traits").items():
        column = TRAITS.get(name, name)
        if column == "member_id":
            raise RowError("traits.member_id", "the member is the userId")
        record[column] = value
    return record


def identify_key(item: dict[str, Any]) -> str:
    """What makes an identify take effect once: its messageId, else a digest of it."""
    message_id = item.get("messageId")
    if isinstance(message_id, str) and message_id.strip():
        return "identify:" + message_id.strip()[:180]
    return "identify:sha256:" + digest(item)


def check_items(
    connection: Connection,
    items: Sequence[Any],
    received_at: int,
    only: str | None = None,
    returning: Returning | None = None,
) -> Checked:
    """Check ``items`` (every one of type ``only``, or each naming its ``type``) with one
    query for the members they name. With ``returning``, an identify of a forgotten member
    (``nudgeflow members forget``) is rejected, as an import rejects their row."""
    checked = Checked()
    forgotten = ForgottenMembers(connection, returning) if returning is not None else None
    parsed: list[tuple[int, str, dict[str, Any], dict[str, Any]]] = []
    for index, item in enumerate(items):
        kind: Any = None
        try:
            if not isinstance(item, dict):
                raise RowError("item", "expected a JSON object")
            asked = only or item.get("type")
            if asked not in TYPES:
                raise RowError("type", f"expected track or identify, got {asked!r}")
            kind = asked
            if "\\u0000" in json.dumps(item):
                raise RowError("item", "contains a NUL character (\\u0000)")
            if kind == "track":
                record = track_record(item, received_at)
                parse_event(record)
            else:
                record = identify_record(item)
            parsed.append((index, str(kind), item, record))
        except RowError as exc:
            checked.rejected.append((index, _reason(exc, kind)))
    stored = _stored_emails(connection, [record["member_id"] for _, _, _, record in parsed])
    identified: set[str] = set()
    for index, kind, item, record in parsed:
        member_id = record["member_id"]
        try:
            if kind == "identify":
                if not record.get("email") and member_id in stored:
                    record["email"] = stored[member_id]
                row = parse_member(record)
                refusal = forgotten.refusal(row) if forgotten is not None else None
                if refusal is not None:
                    raise refusal
                identified.add(member_id)
                entry = {"type": kind, "key": identify_key(item), "record": record}
            else:
                if member_id not in stored and member_id not in identified:
                    raise RowError("userId", f"unknown member {member_id!r} (identify them first)")
                entry = {"type": kind, "record": record}
        except RowError as exc:
            checked.rejected.append((index, _reason(exc, kind)))
            continue
        checked.accepted.append(entry)
    checked.rejected.sort()
    return checked


def _reason(error: RowError, kind: str | None) -> str:
    """``field: reason``, the field named as the sender wrote it."""
    name = error.field
    if name == "member_id":
        name = "userId"
    elif kind == "track":
        name = EVENT_FIELDS.get(name, name)
    elif kind == "identify" and name not in ("userId", "item", "type"):
        name = name if name.startswith("traits") else "traits." + name
    return f"{name}: {error.reason}"


def _stored_emails(connection: Connection, member_ids: list[str]) -> dict[str, str]:
    if not member_ids:
        return {}
    found = connection.execute(
        sa.select(members.c.member_id, members.c.email).where(
            in_keys(connection, members.c.member_id)
        ),
        keys_param(connection, sorted(set(member_ids))),
    ).all()
    return {str(member_id): str(email) for member_id, email in found}
