"""Working the inbox: every accepted request takes effect once, however often it is worked.

``work_inbox`` reads pending rows in batches, oldest first. SendGrid and ingestion rows are
worked together, a batch in one write transaction (up to 1,000 rows and 1 MiB of bodies):
the rows still pending are marked ``done`` (on PostgreSQL a second worker passes by the
ones another has claimed) and their effects written set-based (``inbound.sendgrid_events``,
``inbound.ingest``), all committed at once: a crash before the commit leaves them pending,
and working them again inserts nothing twice because every effect is keyed (event ids,
``inbox_keys``). Stripe rows go through ``night.rewards.record_stripe_fact``, the code
``stripe sync`` uses, which is idempotent and keeps its own ledger transactions; the row is
marked done after.

When a batch fails, its rows are worked one by one, so one bad row costs only itself: its
attempt and error are recorded, it is retried by later calls, and after ``max_attempts``
it is ``failed`` (``nudgeflow inbox retry`` puts it back).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from sqlalchemy import Connection

from inbound.ingest import record_items
from inbound.sendgrid_events import (
    PreparedEvents,
    prepare_sendgrid_events,
    write_sendgrid_events,
)
from night.rewards import record_stripe_fact
from nudgeflow.timeutil import to_epoch
from providers.stripe_reads import redemption_fact
from store.engine import immediate_transaction, write_turn
from store.inbox import InboxRow, claim_done, note_failure, pending_rows

logger = logging.getLogger("nudgeflow.inbox")

BATCH_SIZE = 1_000  # inbox rows read at once, and at most per transaction
BATCH_BYTES = 1 << 20  # characters of request bodies per transaction (a SendGrid row may
# hold ~1,000 events: a few such rows to a transaction, single events by the thousand)
MAX_ATTEMPTS = 5


@dataclass
class WorkResult:
    """What one ``work_inbox`` call did."""

    done: int = 0
    failed: int = 0  # rows that reached their last attempt
    retrying: int = 0  # rows whose attempt failed, left pending for later
    effects: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, name: str, count: int) -> None:
        if count:
            self.effects[name] = self.effects.get(name, 0) + count


@contextmanager
def _write(engine: sa.Engine) -> Iterator[Connection]:
    # This process's write turn first (the service's request threads write too), then the
    # database's write lock from the first statement.
    with write_turn(engine), immediate_transaction(engine) as connection:
        yield connection


def work_inbox(
    engine: sa.Engine,
    zone: ZoneInfo,
    clock: Callable[[], datetime],
    *,
    batch_size: int = BATCH_SIZE,
    max_attempts: int = MAX_ATTEMPTS,
    only: Sequence[int] | None = None,
) -> WorkResult:
    """Work every pending row (or those of ``only``) once; rows whose attempt fails are left
    for a later call."""
    result = WorkResult()
    after = 0
    while True:
        with engine.connect() as connection:
            rows = pending_rows(connection, batch_size, after=after, only=only)
        if not rows:
            return result
        after = rows[-1].id
        local = [row for row in rows if row.kind != "stripe"]
        for part in by_size(local, BATCH_BYTES):
            _work_local(engine, part, clock, result, max_attempts)
        for row in rows:
            if row.kind == "stripe":
                _work_stripe(engine, row, zone, clock, result, max_attempts)


def by_size(rows: list[InboxRow], limit: int) -> Iterator[list[InboxRow]]:
    """``rows`` in order, in parts whose bodies add up to at most ``limit`` characters (a
    row larger than that alone): single events share a transaction by the thousand, large
    batches of events a few at a time."""
    part: list[InboxRow] = []
    size = 0
    for row in rows:
        if part and size + len(row.body) > limit:
            yield part
            part, size = [], 0
        part.append(row)
        size += len(row.body)
    if part:
        yield part


def _work_local(
    engine: sa.Engine,
    rows: list[InboxRow],
    clock: Callable[[], datetime],
    result: WorkResult,
    max_attempts: int,
) -> None:
    try:
        _apply(engine, rows, clock, result)
        return
    except Exception as exc:
        if len(rows) == 1:
            _failed(engine, rows[0], exc, clock, result, max_attempts)
            return
    for row in rows:  # find the bad one: each row alone
        try:
            _apply(engine, [row], clock, result)
        except Exception as exc:
            _failed(engine, row, exc, clock, result, max_attempts)


def _apply(
    engine: sa.Engine, rows: list[InboxRow], clock: Callable[[], datetime], result: WorkResult
) -> None:
    """Claim the rows still pending (marked done) and write their effects: one transaction.

    The SendGrid events are parsed and mapped to their actions before it, in a read
    transaction: on SQLite the write transaction holds the database's one write lock, which
    the service's intake waits for to store the requests that keep arriving, so the lock
    is held only to claim and write."""
    found = WorkResult()
    sendgrid_rows = [row for row in rows if row.kind == "sendgrid"]
    prepared: PreparedEvents | None = None
    if sendgrid_rows:
        with engine.connect() as connection:
            prepared = prepare_sendgrid_events(connection, _sendgrid_batches(sendgrid_rows))
    with _write(engine) as connection:
        now = to_epoch(clock())
        # Claimed first: what else the transaction writes commits with it, or neither does.
        claimed = claim_done(connection, [row.id for row in rows], now)
        mine = [row for row in rows if row.id in claimed]
        if prepared is not None:
            if len(mine) < len(rows):  # another worker took some meanwhile: map only ours
                ours = [row for row in mine if row.kind == "sendgrid"]
                prepared = prepare_sendgrid_events(connection, _sendgrid_batches(ours))
            outcome = write_sendgrid_events(connection, prepared, now=now)
            found.add("email events recorded", outcome.recorded)
            found.add("unsubscribed", outcome.unsubscribed)
            found.add("repeated", outcome.repeated)
            found.skipped = dict(outcome.skipped)
        items = [item for row in mine if row.kind == "ingest" for item in _items(row)]
        if items:
            ingested = record_items(connection, items, now=now)
            found.add("members written", ingested.members_written)
            found.add("events recorded", ingested.events_recorded)
            found.add("repeated", ingested.repeated)
            if ingested.skipped:
                found.skipped["no longer valid"] = ingested.skipped
        unknown = [row for row in mine if row.kind not in ("sendgrid", "ingest")]
        if unknown:
            raise ValueError(f"inbox row {unknown[0].id}: unknown kind {unknown[0].kind!r}")
    result.done += len(mine)
    for name, count in found.effects.items():
        result.add(name, count)
    for reason, count in found.skipped.items():
        result.skipped[reason] = result.skipped.get(reason, 0) + count


def _sendgrid_batches(rows: list[InboxRow]) -> list[tuple[list[dict[str, Any]], int]]:
    """The events of each SendGrid row and when it was received. The bodies were checked
    when they were accepted; here they are parsed again, all of a transaction's in one call
    of orjson (its rows are mostly single events), and each row on its own with the
    standard library only if that fails (a number beyond a double). orjson reads an integer
    beyond 64 bits as a float: of an event, only strings and the timestamp are read, where
    that changes nothing."""
    if not rows:
        return []
    try:
        bodies = orjson.loads("[" + ",".join(row.body for row in rows) + "]")
    except orjson.JSONDecodeError:  # one of them is not JSON (or not as orjson reads it)
        return [(_events(row), row.received_at) for row in rows]
    batches = []
    for row, body in zip(rows, bodies, strict=True):
        if not isinstance(body, list) or not all(isinstance(event, dict) for event in body):
            raise ValueError(f"inbox row {row.id}: not a JSON array of objects")
        batches.append((body, row.received_at))
    return batches


def _events(row: InboxRow) -> list[dict[str, Any]]:
    body = json.loads(row.body)
    if not isinstance(body, list) or not all(isinstance(event, dict) for event in body):
        raise ValueError(f"inbox row {row.id}: not a JSON array of objects")
    return body


def _items(row: InboxRow) -> list[dict[str, Any]]:
    body = json.loads(row.body)
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise ValueError(f"inbox row {row.id}: not a list of ingestion items")
    return list(body["items"])


def _work_stripe(
    engine: sa.Engine,
    row: InboxRow,
    zone: ZoneInfo,
    clock: Callable[[], datetime],
    result: WorkResult,
    max_attempts: int,
) -> None:
    try:
        fact = redemption_fact(json.loads(row.body))
        recorded = record_stripe_fact(engine, fact, zone, clock())
        if recorded.problems:
            raise ValueError("; ".join(recorded.problems))
        with _write(engine) as connection:
            if claim_done(connection, [row.id], to_epoch(clock())):
                result.done += 1
        result.add("discounts linked", recorded.linked)
        result.add("redemptions recorded", recorded.redeemed)
    except Exception as exc:
        _failed(engine, row, exc, clock, result, max_attempts)


def _failed(
    engine: sa.Engine,
    row: InboxRow,
    exc: Exception,
    clock: Callable[[], datetime],
    result: WorkResult,
    max_attempts: int,
) -> None:
    error = f"{type(exc).__name__}: {exc}"
    logger.warning("inbox row %d (%s): %s", row.id, row.kind, error)
    with _write(engine) as connection:
        failed = note_failure(connection, row.id, error, to_epoch(clock()), max_attempts)
    if failed:
        result.failed += 1
        result.problems.append(f"row {row.id} ({row.kind}) failed: {error}")
    else:
        result.retrying += 1


def backlog(engine: sa.Engine) -> int:
    """How many rows are pending."""
    from store.inbox import inbox_status

    with engine.connect() as connection:
        return inbox_status(connection).total("pending")
