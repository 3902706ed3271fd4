"""The subject-access export (GDPR Art. 15): ``nudgeflow members export MEMBER_ID``.

Everything nudgeflow holds about one member, as one JSON document: the member row, the
profile (stage, RFM, score), stage history, tags and their history, email consent and the
preference centre's choices, every event, every action (campaign, state, variant, dates),
the rewards with their amounts and codes, gifts, the emails sent, the inbox's stored
requests that are about them or mention them (the items themselves), and the ledger's
transactions under their pseudonym. Instants are ISO 8601 UTC.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from domain.erasure import about_member, forgotten_ref
from domain.postings import member_ref
from night.erasure import needles, subject_of
from nudgeflow.errors import NotFoundError
from store import erasure as erasure_sql
from store import subject_access as held
from store.consent import consent_of
from store.preferences import preferences_of
from store.profiles import member_stage_history
from store.tags import tag_changes, tags_on

FORMAT = "nudgeflow subject access export, v1"
# Columns that hold epoch seconds (UTC): written as ISO 8601 instants.
EPOCH_COLUMNS = {
    "joined_at",
    "occurred_at",
    "expires_at",
    "redeemed_at",
    "response_from",
    "response_until",
    "first_purchase_at",
    "last_purchase_at",
    "received_at",
    "processed_at",
}
_PRIVATE = {"row_hash", "import_id", "source_line", "id"}


def _instant(value: datetime) -> str:
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def plain(value: Any, key: str = "") -> Any:
    """A stored value as JSON: dates ISO, instants ISO 8601 UTC, epoch columns too."""
    if isinstance(value, dict):
        return {k: plain(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return _instant(value)
    if isinstance(value, date):
        return value.isoformat()
    if key in EPOCH_COLUMNS and isinstance(value, int) and not isinstance(value, bool):
        return _instant(datetime.fromtimestamp(value, UTC))
    return value


def subject_access(
    engine: Engine, member_id: str, *, signing_key: str, now: datetime
) -> dict[str, Any]:
    """The export of ``member_id``; ``NotFoundError`` for an unknown or forgotten member."""
    with engine.connect() as connection:
        member = erasure_sql.find_member(connection, member_id)
        if member is None:
            ref = forgotten_ref("member_id", member_id, signing_key)
            receipt = erasure_sql.receipt_for_refs(connection, [ref])
            if receipt is not None:
                raise NotFoundError(
                    f"member {member_id!r} was forgotten on {receipt.erased_at:%Y-%m-%d} "
                    f"(erasure receipt {receipt.id}): nothing that names them is held"
                )
            raise NotFoundError(f"no member with member_id {member_id!r}")
        document: dict[str, Any] = plain(_document(connection, dict(member), signing_key, now))
        return document


def _document(
    connection: Connection, member: dict[str, Any], signing_key: str, now: datetime
) -> dict[str, Any]:
    pk = int(member["id"])
    member_id = str(member["member_id"])
    profile = held.profile_of(connection, pk)
    consent = consent_of(connection, member_id)
    preferences = preferences_of(connection, pk, now)
    actions = held.actions_of(connection, pk)
    pseudonym = member_ref(member_id, signing_key)
    return {
        "format": FORMAT,
        "exported_at": now,
        "member": {k: v for k, v in member.items() if k not in _PRIVATE},
        "profile": profile,
        "stage_history": member_stage_history(connection, pk),
        "tags": tags_on(connection, pk, profile["as_of"] if profile else now.date()),
        "tag_history": [
            {
                "tag": c.tag,
                "source": c.source,
                "change": c.change,
                "as_of": c.as_of,
                "rest_until": c.rest_until,
                "reason": c.reason,
            }
            for c in tag_changes(connection, pk)
        ],
        "email_consent": {
            "given": consent.given,
            "withdrawn_by": consent.withdrawn_by,
            "since": consent.withdrawal[1] if consent.withdrawal else None,
        },
        "preferences": {
            "categories_out": {
                category: datetime.fromtimestamp(at, UTC)
                for category, at in sorted(preferences.categories_out.items())
            },
            "paused_until": None
            if preferences.paused_until is None
            else datetime.fromtimestamp(preferences.paused_until, UTC),
        },
        "events": held.events_of(connection, pk),
        "actions": actions,
        "emails_sent": [
            {
                "action_id": a["action_id"],
                "campaign_id": a["campaign_id"],
                "template": a["template"],
                "variant": a["variant"],
                "sent_at": a["sent_at"],
                "message_id": a["message_id"],
            }
            for a in actions
            if a["sent_at"] is not None
        ],
        "rewards": held.rewards_of(connection, pk),
        "gifts": held.gifts_of(connection, pk),
        "inbox": _inbox_items(connection, member, signing_key),
        "ledger": {"member_ref": pseudonym, "transactions": held.ledger_of(connection, pseudonym)},
    }


def _inbox_items(
    connection: Connection, member: dict[str, Any], signing_key: str
) -> list[dict[str, Any]]:
    """The stored requests that mention the member: the items about them, or the whole
    body when it is one object (a Stripe event)."""
    subject = subject_of(member, signing_key)
    found: list[dict[str, Any]] = []
    for row_id, kind, body in erasure_sql.inbox_mentioning(connection, needles(subject)):
        try:
            value = json.loads(body)
        except ValueError:
            continue
        if not subject.mentioned_in(value):
            continue
        items = value.get("items") if isinstance(value, dict) and kind == "ingest" else value
        if isinstance(items, list):
            about = about_member(kind, subject)
            chosen = [item for item in items if about(item) or subject.mentioned_in(item)]
        else:
            chosen = [items]
        found.append({"inbox_id": row_id, "kind": kind, "items": chosen})
    return found
