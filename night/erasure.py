"""Forgetting a member (GDPR Art. 17) while keeping the books: ``nudgeflow members forget``.

``forget_member`` removes the member's personal data from every table nudgeflow keeps and
deletes their emails from the file outbox, in one transaction under the run lease (so no
night dispatches to them meanwhile); the outbox files go last before the commit, so a
failed commit leaves nothing half-forgotten that a second ``forget`` would not finish. What
finance and measurement need stays, under a pseudonym (``domain.erasure``): the member row
(its key holds actions, profiles and stage history), events without their properties,
actions, rewards' amounts, the ledger. The receipt says when, who, why and what, as counts;
the forgotten references (keyed digests of the member id and the email) let an import
refuse the member's return.

A member whose actions are still in dispatch (reserved, issued, sending, unknown) cannot be
forgotten until the night finishes or ``actions resolve`` settles them: their reward and
email are on their way. Planned actions are failed: nothing of theirs has left yet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine

from domain.erasure import RefKind, Subject, about_member, forgotten_ref, pseudonym
from domain.ledger_keys import key_id
from domain.postings import member_ref
from night.lease import night_lease
from nudgeflow.errors import NotFoundError, NudgeflowError
from nudgeflow.timeutil import Clock
from providers.file_outbox import remove_messages
from store import erasure as erasure_sql
from store.engine import write_transaction
from store.erasure import Receipt


class ErasureRefused(NudgeflowError):
    """The member cannot be forgotten as things stand (an outbox file cannot be removed)."""


class ErasureBlocked(ErasureRefused):
    """The member has actions still in dispatch: forget them once those are settled."""

    exit_code = 3


@dataclass(frozen=True)
class Forgotten:
    """What ``forget_member`` did: the receipt, and whether it had been done before."""

    receipt: Receipt
    already: bool


def refs_of(member_id: str, email: str | None, key: str) -> list[tuple[RefKind, str]]:
    refs: list[tuple[RefKind, str]] = [("member_id", forgotten_ref("member_id", member_id, key))]
    if email:
        refs.append(("email", forgotten_ref("email", email, key)))
    return refs


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def forget_member(
    engine: Engine,
    member_id: str,
    *,
    signing_key: str,
    outbox_dir: Path,
    erased_by: str,
    reason: str | None,
    clock: Clock,
) -> Forgotten:
    """Forget ``member_id`` (see the module); a second call finds the receipt and changes
    nothing. Raises ``NotFoundError`` for a member never known."""
    with night_lease(engine, None, clock):
        done = _forget(engine, member_id, signing_key, outbox_dir, erased_by, reason, clock)
    erasure_sql.checkpoint(engine)
    return done


def _forget(
    engine: Engine,
    member_id: str,
    signing_key: str,
    outbox_dir: Path,
    erased_by: str,
    reason: str | None,
    clock: Clock,
) -> Forgotten:
    with write_transaction(engine) as connection, erasure_sql.overwriting(connection):
        member = erasure_sql.find_member(connection, member_id)
        if member is None:
            ref = forgotten_ref("member_id", member_id, signing_key)
            before = erasure_sql.receipt_for_refs(connection, [ref])
            if before is None:
                raise NotFoundError(f"no member with member_id {member_id!r}")
            return Forgotten(before, already=True)
        before = erasure_sql.receipt_of_member(connection, member["id"])
        if before is not None:  # asked by the pseudonym
            return Forgotten(before, already=True)
        now = _naive(clock())
        removed = _erase(connection, dict(member), signing_key, outbox_dir, now)
        receipt_id = erasure_sql.record_erasure(
            connection,
            member_pk=member["id"],
            member_ref=member_ref(member_id, signing_key),
            erased_at=now,
            erased_by=erased_by,
            reason=reason,
            removed=removed,
            refs=refs_of(member_id, member["email"], signing_key),
            key_id=key_id(signing_key.encode()),
        )
        receipt = erasure_sql.receipt_of_member(connection, member["id"])
        assert receipt is not None and receipt.id == receipt_id
        return Forgotten(receipt, already=False)


def subject_of(member: dict[str, Any], signing_key: str) -> Subject:
    first, last = member.get("first_name"), member.get("last_name")
    # A full name only: a lone first name ("Al") would match too much text that is not theirs.
    full_name = f"{first} {last}" if first and last else None
    return Subject(
        member_id=member["member_id"],
        email=member["email"] or "",
        full_name=full_name,
        pseudonym=pseudonym(member["member_id"], signing_key),
    )


def needles(subject: Subject) -> list[str]:
    """What to look for in stored text: the email, the full name, the quoted member id."""
    found = [subject.email, erasure_sql.quoted(subject.member_id)]
    if subject.full_name:
        found.append(subject.full_name)
    return [needle for needle in found if needle]


def _erase(
    connection: Connection,
    member: dict[str, Any],
    signing_key: str,
    outbox_dir: Path,
    now: datetime,
) -> dict[str, int]:
    pk = int(member["id"])
    busy = erasure_sql.actions_in_flight(connection, pk)
    if busy:
        states = ", ".join(f"{count} {state}" for state, count in sorted(busy.items()))
        raise ErasureBlocked(
            f"member {member['member_id']!r} has actions still in dispatch ({states}): let "
            "the night finish, or settle unknown ones with `nudgeflow actions resolve`, "
            "then forget them"
        )
    subject = subject_of(member, signing_key)
    looked_for = needles(subject)
    removed: dict[str, int] = {
        "planned_actions_failed": erasure_sql.fail_planned(connection, pk, now)
    }
    others = [
        (event_id, subject.redact(properties))
        for event_id, properties in erasure_sql.events_mentioning(connection, pk, looked_for)
        if subject.mentioned_in(properties)
    ]
    erasure_sql.set_event_properties(connection, others)
    removed["other_members_event_properties"] = len(others)
    bodies = []
    dropped = 0
    for row_id, kind, body in erasure_sql.inbox_mentioning(connection, looked_for):
        new_body, items = _redact_body(kind, body, subject)
        if new_body != body:
            bodies.append((row_id, new_body))
            dropped += items
    erasure_sql.set_inbox_bodies(connection, bodies)
    nights = [
        (run_id, subject.redact(summary), None if error is None else subject.redact_text(error))
        # By email or name only: a run's summary holds campaign ids, which may look like ids.
        for run_id, summary, error in erasure_sql.runs_mentioning(
            connection, [n for n in looked_for if n != erasure_sql.quoted(subject.member_id)]
        )
    ]
    erasure_sql.set_runs(connection, nights)
    removed["run_records"] = len(nights)
    removed["inbox_requests"] = len(bodies)
    removed["inbox_items"] = dropped
    removed |= erasure_sql.erase_member_rows(connection, pk, subject.pseudonym, subject.email, now)
    keys = erasure_sql.message_keys(connection, pk)
    try:
        removed["outbox_files"] = remove_messages(outbox_dir, keys)
    except OSError as exc:
        raise ErasureRefused(
            f"cannot remove an outbox file under {outbox_dir}: {exc.strerror or exc}; the "
            "database is as it was: fix the folder's permissions and forget the member again"
        ) from None
    return removed


def _redact_body(kind: str, body: str, subject: Subject) -> tuple[str, int]:
    """An inbox body without the items about the member and with every other mention of
    them redacted; and how many items went."""
    try:
        value = json.loads(body)
    except ValueError:
        return subject.redact_text(body), 0
    if not subject.mentioned_in(value):
        return body, 0  # the LIKE matched something else (another member's longer id)
    about = about_member(kind, subject)
    items = value.get("items") if isinstance(value, dict) else value
    dropped = sum(1 for item in items if about(item)) if isinstance(items, list) else 0
    return json.dumps(subject.redact(value, about), ensure_ascii=False), dropped
