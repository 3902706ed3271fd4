"""What the pure rule evaluator knows about one member: plain values, no database rows.

``store`` (or a test) builds ``MemberFacts`` from the tables; ``audience.evaluate`` reads
them. Instants are epoch seconds in UTC, as in the schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class EventFact:
    type: str
    occurred_at: int  # epoch seconds UTC
    amount_minor: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class MemberFacts:
    joined_at: int | None  # epoch seconds UTC
    # Member columns of ``MEMBER_FIELDS`` plus custom attributes; a missing key is a missing
    # value (an empty string is present).
    fields: Mapping[str, str]
    tags: frozenset[str]  # active tags only
    events: Sequence[EventFact]
