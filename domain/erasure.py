"""Erasure (GDPR Art. 17) as pure values: the keyed references that remember a forgotten
member without naming them, the pseudonym a forgotten member's kept rows carry, and the
redaction of stored JSON (inbox bodies, other members' event properties) that mentions them.

A forgotten member is remembered only by keyed digests (HMAC-SHA256 under the signing key)
of their ``member_id`` and of their email as normalised here: enough to refuse a later
import of either, useless to anyone without the key. The pseudonym of the kept member row is
``forgotten-`` followed by the ledger's ``member_ref``, so finance can still match the
pseudonymous actions to the ledger's transactions, which have named members that way all
along.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from domain.postings import member_ref

PSEUDONYM_PREFIX = "forgotten-"
ERASED = "[erased]"  # what stands where a forgotten member's email or name was
RefKind = Literal["member_id", "email"]
_CONTEXT = b"nudgeflow forgotten member, v1"  # domain separation from the other HMACs


def normalise_email(email: str) -> str:
    """The email as forgotten references compare it: trimmed and case-folded."""
    return email.strip().casefold()


def normalise(kind: RefKind, value: str) -> str:
    return normalise_email(value) if kind == "email" else value.strip()


def forgotten_ref(kind: RefKind, value: str, key: str | bytes) -> str:
    """The keyed reference of a forgotten member's ``member_id`` or email: HMAC-SHA256 under
    ``key`` of the kind and the normalised value, hex (64 characters)."""
    secret = key.encode() if isinstance(key, str) else key
    message = _CONTEXT + b"\0" + kind.encode() + b"\0" + normalise(kind, value).encode()
    return hmac.digest(secret, message, "sha256").hex()


def pseudonym(member_id: str, key: str | bytes) -> str:
    """What stands in a forgotten member's ``member_id``: the ledger's pseudonym, prefixed."""
    return PSEUDONYM_PREFIX + member_ref(member_id, key)


def is_pseudonym(member_id: str) -> bool:
    return member_id.startswith(PSEUDONYM_PREFIX)


@dataclass(frozen=True)
class Subject:
    """The member being forgotten, as far as redaction needs them: the values whose every
    occurrence is removed, and the pseudonym that replaces their ``member_id``."""

    member_id: str
    email: str
    full_name: str | None
    pseudonym: str

    @property
    def _needles(self) -> list[str]:
        found = [self.email.strip()] + ([self.full_name] if self.full_name else [])
        return [needle for needle in found if needle]

    def redact_text(self, text: str) -> str:
        """``text`` with the email and the full name (any case) replaced by ``[erased]``,
        and the whole text replaced by the pseudonym if it is the ``member_id``."""
        if text.strip() == self.member_id:
            return self.pseudonym
        for needle in self._needles:
            text = re.sub(re.escape(needle), ERASED, text, flags=re.IGNORECASE)
        return text

    def names(self, text: str) -> bool:
        """Whether ``text`` is the member's id or contains their email or full name."""
        if text.strip() == self.member_id:
            return True
        lowered = text.casefold()
        return any(needle.casefold() in lowered for needle in self._needles)

    def redact(self, value: Any, drop: Callable[[Any], bool] | None = None) -> Any:
        """A JSON value with every string redacted (keys too); list items for which
        ``drop`` is true (the items *about* the member) are left out altogether."""
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, dict):
            return {self.redact_text(k): self.redact(v, drop) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(item, drop) for item in value if drop is None or not drop(item)]
        return value

    def mentioned_in(self, value: Any) -> bool:
        """Whether any string of a JSON value (keys too) names the member."""
        return any(self.names(text) for text in _strings(value))


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def about_member(kind: str, subject: Subject) -> Callable[[Any], bool]:
    """Which items of an inbox body of ``kind`` are about the member (and go whole): a
    SendGrid event addressed to them, an ingestion item whose record is theirs."""

    def sendgrid(item: Any) -> bool:
        return isinstance(item, dict) and subject.names(str(item.get("email") or ""))

    def ingest(item: Any) -> bool:
        record = item.get("record") if isinstance(item, dict) else None
        if not isinstance(record, dict):
            return False
        return str(record.get("member_id") or "").strip() == subject.member_id or subject.names(
            str(record.get("email") or "")
        )

    if kind == "sendgrid":
        return sendgrid
    if kind == "ingest":
        return ingest
    return lambda item: False
