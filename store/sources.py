"""The ``sources`` table: one row per distinct content of the campaign folder and templates
(``domain.provenance``), which runs and actions name by ``digest``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from domain.provenance import Provenance
from store.schema import sources


def record_source(connection: Connection, provenance: Provenance, *, now: datetime) -> None:
    """Keep ``provenance`` under its digest (idempotent).

    The same content may be seen again under a later commit: the row keeps its first
    sighting, except that a clean commit replaces a missing or dirty one, since only a clean
    commit holds exactly these files.
    """
    row = connection.execute(
        select(sources.c.git_commit, sources.c.git_dirty).where(
            sources.c.digest == provenance.digest
        )
    ).first()
    if row is None:
        connection.execute(
            sources.insert().values(
                digest=provenance.digest,
                campaigns_sha256=provenance.campaigns_sha256,
                templates_sha256=provenance.templates_sha256,
                git_commit=provenance.git_commit,
                git_dirty=provenance.git_dirty,
                files=provenance.files,
                campaign_files=provenance.campaign_files,
                first_seen_at=now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now,
            )
        )
        return
    commit, dirty = row
    clean_now = provenance.git_commit is not None and provenance.git_dirty is False
    if clean_now and (commit is None or dirty):
        connection.execute(
            update(sources)
            .where(sources.c.digest == provenance.digest)
            .values(git_commit=provenance.git_commit, git_dirty=False)
        )


def find_source(connection: Connection, digest: str) -> dict[str, Any] | None:
    """The stored source with this digest, as a dict of its columns, or ``None``."""
    row = connection.execute(select(sources).where(sources.c.digest == digest)).mappings().first()
    return None if row is None else dict(row)


class SourceCache:
    """Sources looked up once per digest (an export names few distinct ones)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._found: dict[str, dict[str, Any] | None] = {}

    def get(self, digest: str | None) -> dict[str, Any] | None:
        if digest is None:
            return None
        if digest not in self._found:
            self._found[digest] = find_source(self._connection, digest)
        return self._found[digest]
