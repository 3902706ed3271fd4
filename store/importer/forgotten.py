"""Refusing forgotten members on import: a member row whose ``member_id`` or email matches a
forgotten reference (``store.erasure``, written by ``nudgeflow members forget``) is a bad
row, with its line and the day they were forgotten, unless the import was asked to take
them back (``--allow-returning``); then the references they matched are dropped in the
chunk's transaction, so later imports treat them as any member.

The references are read once per import into a dict; a file is checked only when some
exist, so an import into a database that never forgot anyone costs nothing more. The check
runs on parsed rows, before any writer sees them, whatever path writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from domain.erasure import RefKind, forgotten_ref
from domain.ledger_keys import key_id
from store.erasure import drop_forgotten, load_forgotten
from store.rows import MemberRow, RowError


@dataclass(frozen=True)
class Returning:
    """How an import treats forgotten members: the signing key their references were made
    with, and whether to take them back."""

    signing_key: str = field(repr=False)
    allow: bool = False


class ForgottenMembers:
    """The forgotten references, loaded once for one import."""

    def __init__(self, conn: Connection, returning: Returning) -> None:
        self._conn = conn
        self._key = returning.signing_key
        self._allow = returning.allow
        loaded = load_forgotten(conn, key_id(self._key.encode()))
        self._refs = loaded.refs
        self.other_keys = loaded.other_keys
        self.returned = 0
        self._matched: set[str] = set()

    def sift(
        self,
        good: list[tuple[int, Any, list[str]]],
        bad: list[tuple[int, RowError, list[str]]],
    ) -> list[tuple[int, Any, list[str]]]:
        """The rows that may be written; refused rows are added to ``bad``."""
        if not self._refs:
            return good
        kept: list[tuple[int, Any, list[str]]] = []
        for line, row, cells in good:
            refusal = self.refusal(row)
            if refusal is None:
                kept.append((line, row, cells))
            else:
                bad.append((line, refusal, cells))
        return kept

    def refusal(self, row: MemberRow) -> RowError | None:
        """Why ``row`` may not be written (a forgotten member), or ``None``; with ``allow``,
        notes the references it matched for ``settle`` instead."""
        if not self._refs:
            return None
        candidates: list[tuple[RefKind, str]] = [("member_id", row.member_id)]
        email = row.fields.get("email")
        if email:
            candidates.append(("email", str(email)))
        matched = []
        for kind, value in candidates:
            ref = forgotten_ref(kind, value, self._key)
            if ref in self._refs:
                matched.append((kind, ref, self._refs[ref][1]))
        if not matched:
            return None
        if self._allow:
            self.returned += 1
            self._matched.update(ref for _, ref, _ in matched)
            return None
        kind, _, erased_on = matched[0]
        what = "this member_id" if kind == "member_id" else "this email address"
        return RowError(
            kind,
            f"{what} belongs to a member forgotten on {erased_on.isoformat()} "
            "(nudgeflow members forget); import with --allow-returning to take them back",
        )

    def settle(self) -> None:
        """Drop the references the chunk's returning members matched (before its commit)."""
        if self._matched:
            drop_forgotten(self._conn, sorted(self._matched))
            for ref in self._matched:
                self._refs.pop(ref, None)
            self._matched.clear()
