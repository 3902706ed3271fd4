"""Writing members: upserts by ``member_id`` (a row hash tells a changed member from an
unchanged one), a member repeated in a file (last wins, with a warning), the import tags
a file's tags column replaces, and consent: a row saying ``email_opt_in=true`` never restores
a withdrawn member's consent (``store.consent``); such rows are counted, not rejected."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from store.consent import standing_withdrawals
from store.importer.postgres_stage import MemberStage, TagStage
from store.importer.rejects import ImportResult
from store.importer.statements import (
    JSON_OR_NULL,
    in_keys,
    insert_new,
    is_postgres,
    keys_param,
    naive_utc_now,
)
from store.rows import (
    CONTENT_COLUMNS,
    MemberRow,
    RowError,
    RowProblem,
    asks_to_restore_consent,
    merge_member,
    row_hash,
)
from store.schema import member_tags, members


class MemberWriter:
    """Upserts members by ``member_id`` and replaces their import tags when the file has them."""

    def __init__(self, conn: Connection, result: ImportResult) -> None:
        self._conn = conn
        self._result = result
        self._warnings: list[RowProblem] = []
        content: dict[str, Any] = {n: sa.bindparam(f"b_{n}") for n in CONTENT_COLUMNS}
        content["attributes"] = sa.bindparam("b_attributes", type_=JSON_OR_NULL)
        trace: dict[str, Any] = {
            "import_id": sa.bindparam("b_import_id"),
            "source_line": sa.bindparam("b_line"),
        }
        self._insert = insert_new(conn, members).values(
            member_id=sa.bindparam("b_member_id"),
            row_hash=sa.bindparam("b_row_hash"),
            created_at=sa.bindparam("b_now"),
            updated_at=sa.bindparam("b_now"),
            **content,
            **trace,
        )
        by_pk = members.update().where(members.c.id == sa.bindparam("b_pk"))
        self._update = by_pk.values(
            row_hash=sa.bindparam("b_row_hash"),
            updated_at=sa.bindparam("b_now"),
            **content,
            **trace,
        )
        self._touch = by_pk.values(**trace)  # unchanged, but seen in this import at this line
        self._clear_tags = member_tags.delete().where(
            member_tags.c.member_pk == sa.bindparam("b_pk"), member_tags.c.source == "import"
        )
        self._add_tags = insert_new(conn, member_tags)
        columns = [members.c[name] for name in ("id", "member_id", "row_hash", "import_id")]
        columns += [members.c.source_line, *(members.c[name] for name in CONTENT_COLUMNS)]
        self._select_existing = sa.select(*columns).where(in_keys(conn, members.c.member_id))
        self._select_tags = sa.select(member_tags.c.member_pk, member_tags.c.tag).where(
            member_tags.c.source == "import", in_keys(conn, member_tags.c.member_pk)
        )
        self._select_pks = sa.select(members.c.member_id, members.c.id).where(
            in_keys(conn, members.c.member_id)
        )
        # PostgreSQL: the chunk's writes by COPY into a staging table, then set-based SQL.
        self._stage = MemberStage(conn) if is_postgres(conn) else None
        self._tag_stage = TagStage(conn) if is_postgres(conn) else None
        standing = standing_withdrawals()
        self._select_withdrawn = standing.where(in_keys(conn, standing.selected_columns[0]))

    def write(
        self,
        good: list[tuple[int, MemberRow, list[str]]],
        bad: list[tuple[int, RowError, list[str]]],
        warnings: list[RowProblem],
    ) -> None:
        del bad  # every member row that parsed can be written
        self._warnings = warnings
        result = self._result
        latest: dict[str, tuple[int, MemberRow]] = {}
        for line, row, _original in good:
            earlier = latest.get(row.member_id)
            if earlier is not None:
                self._warn_duplicate(line, row.member_id, earlier[0])
            latest[row.member_id] = (line, row)
        if not latest:
            return
        now = naive_utc_now()
        trace = {"b_import_id": result.import_id, "b_now": now}
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        touches: list[dict[str, Any]] = []
        new_tags: dict[str, tuple[str, ...]] = {}  # member_id → tags, for new members
        retag: dict[int, tuple[str, ...]] = {}  # member pk → tags, for existing members
        conn = self._conn
        existing = self._existing(conn, list(latest))
        current = self._import_tags(conn, latest, existing)
        withdrawn = self._withdrawn_by_events(conn, latest, existing)
        for member_id, (line, row) in latest.items():
            old = existing.get(member_id)
            content = merge_member(old, row)  # keeps email_opt_in=false
            kept_withdrawn = old is not None and (
                asks_to_restore_consent(old, row)
                or (row.fields.get("email_opt_in") is True and old["id"] in withdrawn)
            )
            digest = row_hash(content)
            params = {f"b_{k}": v for k, v in content.items()}
            params.update(trace, b_line=line, b_row_hash=digest)
            if old is None:
                inserts.append(params | {"b_member_id": member_id})
                if row.tags:
                    new_tags[member_id] = row.tags
                result.imported += 1
                continue
            repeat = old["import_id"] == result.import_id  # seen in an earlier chunk
            if repeat:
                self._warn_duplicate(line, member_id, old["source_line"])
            changed = digest != old["row_hash"]
            tags_changed = row.tags is not None and set(row.tags) != current.get(old["id"], set())
            if tags_changed:
                retag[old["id"]] = row.tags or ()
            if changed:
                updates.append(params | {"b_pk": old["id"]})
            else:
                touches.append({"b_pk": old["id"], "b_import_id": result.import_id, "b_line": line})
            if not repeat:  # each member is counted once per import
                result.consent_kept += kept_withdrawn
                if changed or tags_changed:
                    result.updated += 1
                else:
                    result.unchanged += 1
        self._execute(conn, inserts, updates, touches)
        self._write_tags(conn, new_tags, retag)

    def _warn_duplicate(self, line: int, member_id: str, earlier: int) -> None:
        message = f"{member_id!r} is also on line {earlier}; line {line} wins"
        problem = RowProblem(str(self._result.path), line, "member_id", message, warning=True)
        self._warnings.append(problem)

    def _existing(self, conn: Connection, member_ids: list[str]) -> dict[str, dict[str, Any]]:
        stored = conn.execute(self._select_existing, keys_param(conn, member_ids)).mappings()
        return {row["member_id"]: dict(row) for row in stored}

    def _withdrawn_by_events(
        self,
        conn: Connection,
        latest: dict[str, tuple[int, MemberRow]],
        existing: dict[str, dict[str, Any]],
    ) -> set[int]:
        """Keys of the stored members whose rows ask for consent that an event withdrew."""
        pks = [
            old["id"]
            for member_id, old in existing.items()
            if old["email_opt_in"] and latest[member_id][1].fields.get("email_opt_in") is True
        ]
        if not pks:
            return set()
        return {row[0] for row in conn.execute(self._select_withdrawn, keys_param(conn, pks))}

    def _import_tags(
        self,
        conn: Connection,
        latest: dict[str, tuple[int, MemberRow]],
        existing: dict[str, dict[str, Any]],
    ) -> dict[int, set[str]]:
        """Current import tags of the existing members whose rows carry tags."""
        pks = [old["id"] for mid, old in existing.items() if latest[mid][1].tags is not None]
        tags: dict[int, set[str]] = {}
        if pks:
            found = conn.execute(self._select_tags, keys_param(conn, pks))
            for pk, tag in found:
                tags.setdefault(pk, set()).add(tag)
        return tags

    def _execute(
        self,
        conn: Connection,
        inserts: list[dict[str, Any]],
        updates: list[dict[str, Any]],
        touches: list[dict[str, Any]],
    ) -> None:
        if self._stage is not None:
            self._stage.write(inserts, updates, touches)
            return
        for statement, params in (
            (self._insert, inserts),
            (self._update, updates),
            (self._touch, touches),
        ):
            if params:
                conn.execute(statement, params)

    def _write_tags(
        self,
        conn: Connection,
        new_tags: dict[str, tuple[str, ...]],
        retag: dict[int, tuple[str, ...]],
    ) -> None:
        cleared = list(retag)
        if retag and self._tag_stage is None:
            conn.execute(self._clear_tags, [{"b_pk": pk} for pk in retag])
        if new_tags:
            found = conn.execute(self._select_pks, keys_param(conn, list(new_tags)))
            retag.update((pk, new_tags[member_id]) for member_id, pk in found)
        if self._tag_stage is not None:
            self._tag_stage.replace(
                cleared, [(pk, tag) for pk, tags in retag.items() for tag in tags]
            )
            return
        tag_rows = [
            {"member_pk": pk, "tag": tag, "source": "import"}
            for pk, tags in retag.items()
            for tag in tags
        ]
        if tag_rows:
            conn.execute(self._add_tags, tag_rows)
