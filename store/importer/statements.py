"""SQL the import writers share: inserts that skip keys already stored, ``IN`` over one bound
list of keys, JSON that stores ``None`` as NULL, and the ``imports`` row that records each
import's counts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from store.importer.rejects import ImportResult
from store.rows import Kind
from store.schema import imports

# ``None`` must become SQL NULL, not the JSON text 'null' that the plain JSON type writes.
JSON_OR_NULL = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)


def naive_utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # DateTime columns hold naive UTC


def start_import(conn: Connection, kind: Kind, path: Path) -> int:
    """Record the import's start (committed); return its id."""
    statement = imports.insert().values(kind=kind, source=str(path), started_at=naive_utc_now())
    key = conn.execute(statement).inserted_primary_key
    conn.commit()
    assert key is not None
    return int(key[0])


def finish_import(conn: Connection, result: ImportResult) -> None:
    """Record the import's end and counts (committed)."""
    conn.execute(
        imports.update()
        .where(imports.c.id == result.import_id)
        .values(
            finished_at=naive_utc_now(),
            imported=result.imported,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=result.rejected,
        )
    )
    conn.commit()


def insert_new(conn: Connection, table: sa.Table) -> Any:
    """An INSERT that skips rows whose unique key exists (a guard against concurrent imports)."""
    dialect = postgresql if is_postgres(conn) else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def in_keys(conn: Connection, column: sa.ColumnElement[Any]) -> Any:
    """``column IN :keys`` with one bound parameter, however many keys there are.

    A plain ``in_(list)`` renders one parameter per key on every execution (slow, and capped
    by the databases); SQLite reads the keys from a JSON array, PostgreSQL from an array.
    """
    if is_postgres(conn):
        return column == sa.any_(sa.bindparam("keys", type_=postgresql.ARRAY(column.type)))
    keys: Any = sa.select(sa.column("value"))
    return column.in_(keys.select_from(sa.func.json_each(sa.bindparam("keys"))).scalar_subquery())


def keys_param(conn: Connection, values: Sequence[str | int]) -> dict[str, Any]:
    """The ``keys`` parameter of ``in_keys``."""
    return {"keys": list(values) if is_postgres(conn) else json.dumps(values)}
