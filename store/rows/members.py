"""Member rows: one member record checked into clean values, merged with what is stored, and
the digest that tells whether an import changed the member."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from store.rows.columns import MEMBER_COLUMNS
from store.rows.values import (
    FIELD_LIMIT,
    RowError,
    instant_seconds,
    limited,
    required_value,
    text_value,
)

# The member columns a row hash covers, in a fixed order (tags are compared on their own).
CONTENT_COLUMNS = (
    "email",
    "first_name",
    "last_name",
    "joined_at",
    "birth_year",
    "birth_month",
    "birth_day",
    "country",
    "timezone",
    "stripe_customer_id",
    "email_opt_in",
    "attributes",
)
_MAX_TAG_LENGTH = 100
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_BIRTHDAY = re.compile(r"^(?:(\d{4})-)?(\d{2})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class MemberRow:
    """A parsed member record; only the columns the record carries are present.

    ``fields`` maps built-in columns (``birthday`` already split into ``birth_*``) to clean
    values, ``None`` meaning "empty". ``attributes`` holds the other columns (``None``:
    empty, so the attribute is removed). ``tags`` is ``None`` when the record has no tags
    column, which leaves the member's tags alone.
    """

    member_id: str
    fields: dict[str, Any]
    attributes: dict[str, str | None]
    tags: tuple[str, ...] | None


def parse_member(record: Mapping[str, Any]) -> MemberRow:
    """Validate and normalise one member record."""
    member_id = required_value("member_id", record.get("member_id"))
    fields: dict[str, Any] = {}
    attributes: dict[str, str | None] = {}
    tags: tuple[str, ...] | None = None
    for name, value in record.items():
        if name == "member_id":
            continue
        if name == "tags":
            tags = parse_tags(value)
        elif name in MEMBER_COLUMNS:
            _parse_member_field(name, value, fields)
        else:
            attributes[name] = text_value(name, value)
    if "email" not in fields:
        raise RowError("email", "required")
    return MemberRow(member_id, fields, attributes, tags)


def _parse_member_field(name: str, value: Any, fields: dict[str, Any]) -> None:
    text = text_value(name, value)
    if name == "email":
        if text is None:
            raise RowError("email", "required")
        fields["email"] = parse_email(text)
    elif name == "joined_at":
        fields["joined_at"] = None if text is None else instant_seconds(name, text)
    elif name == "birthday":
        year, month, day = (None, None, None) if text is None else parse_birthday(text)
        fields.update(birth_year=year, birth_month=month, birth_day=day)
    elif name == "country":
        fields["country"] = None if text is None else limited(name, text.upper())
    elif name == "timezone":
        fields["timezone"] = None if text is None else parse_timezone(text)
    elif name == "email_opt_in":
        # An empty cell never changes consent: new members default to opted in.
        if text is not None:
            fields["email_opt_in"] = parse_bool(name, text)
    else:
        fields[name] = None if text is None else limited(name, text)


def parse_email(text: str) -> str:
    """The normalised address (domain lower-cased, Unicode normalised)."""
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise RowError("email", f"{exc} ({text!r})") from None


def parse_birthday(text: str) -> tuple[int | None, int, int]:
    """``YYYY-MM-DD`` or ``MM-DD`` → (year or None, month, day); Feb 29 needs no year."""
    match = _BIRTHDAY.match(text)
    if match is None:
        raise RowError("birthday", f"expected YYYY-MM-DD or MM-DD, got {text!r}")
    year = int(match.group(1)) if match.group(1) else None
    if year is not None and not 1900 <= year <= 2199:
        raise RowError("birthday", f"the year is outside 1900 to 2199: {text!r}")
    month, day = int(match.group(2)), int(match.group(3))
    try:
        date(year or 2000, month, day)  # 2000 is a leap year, so MM-DD allows 02-29
    except ValueError:
        raise RowError("birthday", f"no such date: {text!r}") from None
    return year, month, day


def parse_timezone(text: str) -> str:
    if not _known_zone(text):
        raise RowError("timezone", f"unknown IANA time zone {text!r} (e.g. Europe/Paris)")
    return text


@lru_cache(maxsize=4096)
def _known_zone(name: str) -> bool:
    # Cached because a file names few zones many times and failed lookups are not cached.
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def parse_bool(field: str, text: str) -> bool:
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise RowError(field, f"expected true/false, yes/no or 1/0, got {text!r}") from None


def parse_tags(value: Any) -> tuple[str, ...]:
    """``a;b`` (or a JSON list) → distinct, non-empty tags in order of first appearance."""
    if isinstance(value, list):
        items = [text_value("tags", item) or "" for item in value]
        if sum(map(len, items)) + len(items) > FIELD_LIMIT:  # as long as the CSV cell would be
            raise RowError("tags", f"longer than {FIELD_LIMIT:,} characters")
    else:
        items = (text_value("tags", value) or "").split(";")
    tags: dict[str, None] = {}
    for item in items:
        tag = item.strip()
        if len(tag) > _MAX_TAG_LENGTH:
            raise RowError("tags", f"tag longer than {_MAX_TAG_LENGTH} characters: {tag!r}")
        if tag:
            tags[tag] = None
    return tuple(tags)


def asks_to_restore_consent(existing: Mapping[str, Any] | None, row: MemberRow) -> bool:
    """Whether ``row`` says ``email_opt_in=true`` for a stored member whose row says false.

    An import may withdraw consent, never restore it: the member keeps ``email_opt_in`` false
    until they (the preference centre) or an operator (``nudgeflow members consent
    --restore``) give it back, as ``store.consent`` records."""
    return (
        existing is not None
        and row.fields.get("email_opt_in") is True
        and not existing["email_opt_in"]
    )


def merge_member(existing: Mapping[str, Any] | None, row: MemberRow) -> dict[str, Any]:
    """The member's content after this row: columns the row lacks keep their old values, and
    withdrawn consent stays withdrawn (``asks_to_restore_consent``)."""
    if existing is None:
        content: dict[str, Any] = dict.fromkeys(CONTENT_COLUMNS)
        content["email_opt_in"] = True
        attributes: dict[str, str] = {}
    else:
        content = {name: existing[name] for name in CONTENT_COLUMNS}
        attributes = dict(content["attributes"] or {})
    content.update(row.fields)
    if asks_to_restore_consent(existing, row):
        content["email_opt_in"] = False
    for name, value in row.attributes.items():
        if value is None:
            attributes.pop(name, None)
        else:
            attributes[name] = value
    content["attributes"] = attributes or None
    return content


def row_hash(content: Mapping[str, Any]) -> str:
    """A 32-character digest of a member's content (key order and JSON spacing ignored)."""
    canonical = json.dumps([content[name] for name in CONTENT_COLUMNS], sort_keys=True)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()
