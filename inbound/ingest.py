"""Recording the ingestion API's accepted items, worked from the inbox: members through the
import's member writer, then events through its event writer (``store.importer``), so an
item has exactly the effect the same row in an import file would have.

Each item takes effect once: a ``track`` is an event whose ``event_id`` is its messageId,
inserted only if new; an ``identify`` is applied only by the transaction that records its
key (``store.inbox.claim_keys``). Every batch of inbox rows is one ``imports`` row (source
``ingest API``), which the members and events it wrote point to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from store.importer import ImportResult
from store.importer.event_writer import EventWriter
from store.importer.member_writer import MemberWriter
from store.inbox import claim_keys
from store.rows import EventRow, MemberRow, RowError, RowProblem, parse_event, parse_member
from store.schema import imports

SOURCE = "ingest API"


@dataclass(frozen=True)
class IngestOutcome:
    members_written: int  # new or changed
    events_recorded: int
    repeated: int  # items that had already taken effect
    skipped: int  # items no longer valid when worked (a member removed meanwhile)


def _import_row(connection: Connection, kind: str, now: datetime) -> int:
    key = connection.execute(
        sa.insert(imports).values(kind=kind, source=SOURCE, started_at=now, finished_at=now)
    ).inserted_primary_key
    assert key is not None
    return int(key[0])


def _finish(connection: Connection, result: ImportResult) -> None:
    connection.execute(
        sa.update(imports)
        .where(imports.c.id == result.import_id)
        .values(
            imported=result.imported,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=result.rejected,
        )
    )


def record_items(
    connection: Connection, items: Sequence[dict[str, Any]], *, now: int
) -> IngestOutcome:
    """Apply the stored items (in order: members first, then events) in the caller's
    transaction; ``now`` is epoch seconds."""
    stamp = datetime.fromtimestamp(now, UTC).replace(tzinfo=None)
    identifies = [item for item in items if item["type"] == "identify"]
    tracks = [item for item in items if item["type"] == "track"]
    new_keys = claim_keys(connection, [item["key"] for item in identifies], now)
    repeated = sum(1 for item in identifies if item["key"] not in new_keys)
    skipped = 0
    written = recorded = 0
    member_rows: list[tuple[int, MemberRow, list[str]]] = []
    for line, item in enumerate(identifies, start=1):
        if item["key"] in new_keys:
            new_keys.discard(item["key"])  # the same key twice in one batch: the first
            try:
                member_rows.append((line, parse_member(item["record"]), []))
            except RowError:
                skipped += 1
    if member_rows:
        result = ImportResult("members", Path(SOURCE))
        result.import_id = _import_row(connection, "members", stamp)
        MemberWriter(connection, result).write(member_rows, [], [])
        _finish(connection, result)
        written = result.imported + result.updated
    event_rows: list[tuple[int, EventRow, list[str]]] = []
    for line, item in enumerate(tracks, start=1):
        try:
            event_rows.append((line, parse_event(item["record"]), []))
        except RowError:
            skipped += 1
    if event_rows:
        result = ImportResult("events", Path(SOURCE))
        result.import_id = _import_row(connection, "events", stamp)
        bad: list[tuple[int, RowError, list[str]]] = []
        warnings: list[RowProblem] = []
        EventWriter(connection, result).write(event_rows, bad, warnings)
        result.rejected = len(bad)
        _finish(connection, result)
        recorded = result.imported
        repeated += result.unchanged
        skipped += len(bad)
    return IngestOutcome(written, recorded, repeated, skipped)
