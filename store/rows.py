"""Import rows: check a file's columns and turn one member or event record into clean values.

Pure: values in, values out. A record is a mapping from column name to its value — always a
string for CSV, any JSON value for JSON Lines. A bad value raises ``RowError(field, reason)``;
the importer turns it into a reject that names the line. Text with NUL characters (which
PostgreSQL cannot store) is refused by the importer for the whole record, before it gets here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from operator import itemgetter
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from nudgeflow.money import normalise_currency, to_minor_units
from nudgeflow.timeutil import parse_instant

Kind = Literal["members", "events"]

MEMBER_COLUMNS = (
    "member_id",
    "email",
    "first_name",
    "last_name",
    "joined_at",
    "birthday",
    "country",
    "timezone",
    "tags",
    "stripe_customer_id",
    "email_opt_in",
)
EVENT_COLUMNS = ("event_id", "member_id", "type", "occurred_at", "amount", "currency", "properties")
REQUIRED = {"members": ("member_id", "email"), "events": EVENT_COLUMNS[:4]}
KNOWN = {"members": MEMBER_COLUMNS, "events": EVENT_COLUMNS}

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
# Longest text the schema stores per column; PostgreSQL would refuse the whole chunk otherwise.
# Other values are capped too (no timestamp or e-mail address is that long).
_MAX_LENGTH = {
    "member_id": 200,
    "event_id": 200,
    "type": 64,
    "first_name": 200,
    "last_name": 200,
    "country": 64,
    "stripe_customer_id": 200,
}
_DEFAULT_MAX_LENGTH = 1000
_MAX_TAG_LENGTH = 100
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_BIRTHDAY = re.compile(r"^(?:(\d{4})-)?(\d{2})-(\d{2})$")


class RowError(ValueError):
    """One bad value in one record; ``str()`` gives ``field: reason``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def __reduce__(self) -> tuple[type[RowError], tuple[str, str]]:
        return RowError, (self.field, self.reason)  # rows checked in another process


@dataclass(frozen=True)
class RowProblem:
    """A rejected row (or a warning about one), located by file and line."""

    path: str
    line: int
    field: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        prefix = "warning: " if self.warning else ""
        return f"{self.path}:{self.line}: {self.field}: {prefix}{self.message}"


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


# event_id, member_id, type, occurred_at (epoch s), amount_minor, currency, properties
EventRow = tuple[str, str, str, int, int | None, str | None, dict[str, Any] | None]


def check_columns(names: Iterable[str], kind: Kind) -> list[str]:
    """Return a CSV header's column names (built-ins lower-cased); raise ``ValueError``."""
    columns: list[str] = []
    for position, raw in enumerate(names, start=1):
        name = column_name(raw)
        if not name:
            raise ValueError(f"column {position} has no name")
        if name in columns:
            first = columns.index(name) + 1
            raise ValueError(f"duplicate column {name!r} (columns {first} and {position})")
        if kind == "events" and name not in EVENT_COLUMNS:
            raise ValueError(
                f"unknown column {name!r}; events files have: {', '.join(EVENT_COLUMNS)}"
            )
        columns.append(name)
    missing = [name for name in REQUIRED[kind] if name not in columns]
    if missing:
        raise ValueError(f"missing required column {', '.join(map(repr, missing))}")
    return columns


def column_name(raw: str) -> str:
    """Built-in columns match whatever their case; other names are kept as written."""
    name = raw.strip()
    lowered = name.lower()
    return lowered if lowered in MEMBER_COLUMNS or lowered in EVENT_COLUMNS else name


def parse_member(record: Mapping[str, Any]) -> MemberRow:
    """Validate and normalise one member record."""
    member_id = _required(record, "member_id")
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
            attributes[name] = _text(name, value)
    if "email" not in fields:
        raise RowError("email", "required")
    return MemberRow(member_id, fields, attributes, tags)


def _parse_member_field(name: str, value: Any, fields: dict[str, Any]) -> None:
    text = _text(name, value)
    if name == "email":
        if text is None:
            raise RowError("email", "required")
        fields["email"] = parse_email(text)
    elif name == "joined_at":
        fields["joined_at"] = None if text is None else _instant(name, text)
    elif name == "birthday":
        year, month, day = (None, None, None) if text is None else parse_birthday(text)
        fields.update(birth_year=year, birth_month=month, birth_day=day)
    elif name == "country":
        fields["country"] = None if text is None else _limited(name, text.upper())
    elif name == "timezone":
        fields["timezone"] = None if text is None else parse_timezone(text)
    elif name == "email_opt_in":
        # An empty cell never changes consent: new members default to opted in.
        if text is not None:
            fields["email_opt_in"] = parse_bool(name, text)
    else:
        fields[name] = None if text is None else _limited(name, text)


def parse_event(record: Mapping[str, Any]) -> EventRow:
    """Validate and normalise one event record (unknown keys are an error)."""
    if not record.keys() <= _EVENT_KEYS:
        unknown = sorted(set(record) - _EVENT_KEYS)
        raise RowError(unknown[0], f"unknown field; events have: {', '.join(EVENT_COLUMNS)}")
    get = record.get
    return _event(*[get(name) for name in EVENT_COLUMNS])


def csv_event_parser(columns: Sequence[str]) -> Callable[[Sequence[str]], EventRow]:
    """``parse_event`` for the rows of a CSV file with these (checked) columns.

    The row is the list of its cells, in the header's order: no dict is built for it, which
    matters at ten million rows. The result and every ``RowError`` are ``parse_event``'s.
    """
    if set(EVENT_COLUMNS) <= set(columns):
        cells = itemgetter(*(columns.index(name) for name in EVENT_COLUMNS))
        return lambda values: _event(*cells(values))
    positions = [columns.index(name) if name in columns else -1 for name in EVENT_COLUMNS]
    return lambda values: _event(*[values[i] if i >= 0 else None for i in positions])


def _event(
    event_id: Any,
    member_id: Any,
    event_type: Any,
    occurred_at: Any,
    amount: Any,
    currency: Any,
    properties: Any,
) -> EventRow:
    """The checks of one event, its values given in ``EVENT_COLUMNS`` order (``None``: absent)."""
    event_id = _required_value("event_id", event_id)
    member_id = _required_value("member_id", member_id)
    event_type = _required_value("type", event_type)
    occurred = _instant("occurred_at", _required_value("occurred_at", occurred_at))
    amount_minor = None
    if currency:  # "" and None both mean no currency
        known = _CURRENCIES.get(currency) if currency.__class__ is str else None
        currency = known if known is not None else _currency(currency)
    else:
        currency = None
    if amount or amount == 0:  # a JSON 0 is an amount; "" is none
        amount = _text("amount", amount)
        if amount is not None:
            if currency is None:
                raise RowError("currency", "required when an amount is given")
            try:
                amount_minor = to_minor_units(amount, currency)
            except ValueError as exc:
                raise RowError("amount", str(exc)) from None
    if properties.__class__ is not dict and properties is not None and properties != "":
        properties = parse_properties(properties)
    return (
        event_id,
        member_id,
        event_type,
        occurred,
        amount_minor,
        currency,
        properties or None,
    )


def _currency(value: Any) -> str | None:
    text = _text("currency", value)
    if text is None:
        return None
    try:
        code = normalise_currency(text)
    except ValueError as exc:
        raise RowError("currency", str(exc)) from None
    if value.__class__ is str and len(_CURRENCIES) < 1000:
        _CURRENCIES[value] = code  # a file spells its few currencies the same way each time
    return code


_CURRENCIES: dict[str, str] = {}  # cell as written → normalised code (valid ones only)


_EVENT_KEYS = frozenset(EVENT_COLUMNS)


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
        items = [_text("tags", item) or "" for item in value]
    else:
        items = (_text("tags", value) or "").split(";")
    tags: dict[str, None] = {}
    for item in items:
        tag = item.strip()
        if len(tag) > _MAX_TAG_LENGTH:
            raise RowError("tags", f"tag longer than {_MAX_TAG_LENGTH} characters: {tag!r}")
        if tag:
            tags[tag] = None
    return tuple(tags)


def parse_properties(value: Any) -> dict[str, Any] | None:
    text = _text("properties", value)
    if text is None:
        return None
    try:
        properties = json.loads(text)
    except ValueError as exc:
        raise RowError("properties", f"invalid JSON: {exc}") from None
    if not isinstance(properties, dict):
        raise RowError("properties", f"expected a JSON object, got {text!r}")
    _refuse_nul("properties", text)
    return properties


def merge_member(existing: Mapping[str, Any] | None, row: MemberRow) -> dict[str, Any]:
    """The member's content after this row: columns the row lacks keep their old values."""
    if existing is None:
        content: dict[str, Any] = dict.fromkeys(CONTENT_COLUMNS)
        content["email_opt_in"] = True
        attributes: dict[str, str] = {}
    else:
        content = {name: existing[name] for name in CONTENT_COLUMNS}
        attributes = dict(content["attributes"] or {})
    content.update(row.fields)
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


def json_scalar(value: Any) -> str | None:
    """JSON Lines values as text: ``true`` → ``'true'``, ``12.5`` → ``'12.5'``."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _text(field: str, value: Any) -> str | None:
    """A stripped string, or ``None`` for an empty value."""
    if value.__class__ is not str:
        value = json_scalar(value)
        if value is None:
            return None
    text: str = value.strip()
    return text or None


def _required(record: Mapping[str, Any], field: str) -> str:
    return _required_value(field, record.get(field))


def _required_value(field: str, value: Any) -> str:
    if value.__class__ is str:  # the fast path: a CSV cell that is fine as it is
        stripped: str = value.strip()
        if stripped and len(stripped) <= _MAX_LENGTH.get(field, _DEFAULT_MAX_LENGTH):
            return stripped
    text = _text(field, value)
    if text is None:
        raise RowError(field, "required")
    return _limited(field, text)


def _limited(field: str, text: str) -> str:
    limit = _MAX_LENGTH.get(field, _DEFAULT_MAX_LENGTH)
    if len(text) > limit:
        raise RowError(field, f"longer than {limit} characters")
    return text


def _instant(field: str, text: str) -> int:
    try:
        # Python reads most ISO 8601 (a final "Z" too) itself; ``parse_instant`` does the rest
        # and gives the same instant for what both read, at three times the cost.
        moment = _FROM_ISO(text)
    except ValueError:
        pass
    else:
        if moment.tzinfo is None:  # naive means UTC
            moment = moment.replace(tzinfo=UTC)
        try:
            return int(moment.timestamp())
        except (ValueError, OverflowError):
            pass
    try:
        return parse_instant(text)
    except (ValueError, OverflowError):
        raise RowError(field, f"expected an ISO 8601 date or time, got {text!r}") from None


_FROM_ISO = datetime.fromisoformat


def _refuse_nul(field: str, text: str) -> None:
    # PostgreSQL cannot store NUL in text or JSONB; refuse it on every database alike.
    if "\\u0000" in text:
        raise RowError(field, "contains a NUL character")
