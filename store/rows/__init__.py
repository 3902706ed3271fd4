"""Import rows: check a file's columns and turn one member or event record into clean values.

Pure: values in, values out. A record is a mapping from column name to its value — always a
string for CSV, any JSON value for JSON Lines. A bad value raises ``RowError(field, reason)``;
the importer turns it into a reject that names the line. Text with NUL characters (which
PostgreSQL cannot store) is refused by the importer for the whole record, before it gets here.
"""

from __future__ import annotations

from store.rows.columns import EVENT_COLUMNS, MEMBER_COLUMNS, Kind, check_columns, column_name
from store.rows.events import (
    CATEGORY_RESUBSCRIBED,
    CATEGORY_UNSUBSCRIBED,
    CONSENT_RESTORED,
    NUDGES_PAUSED,
    NUDGES_RESUMED,
    PREFERENCE_EVENTS,
    EventRow,
    csv_event_parser,
    parse_event,
)
from store.rows.json_values import MAX_DEPTH, load_json
from store.rows.members import (
    CONTENT_COLUMNS,
    MemberRow,
    asks_to_restore_consent,
    merge_member,
    parse_member,
    row_hash,
)
from store.rows.values import FIELD_LIMIT, RowError, RowProblem, json_scalar

__all__ = [
    "CATEGORY_RESUBSCRIBED",
    "CATEGORY_UNSUBSCRIBED",
    "CONSENT_RESTORED",
    "CONTENT_COLUMNS",
    "EVENT_COLUMNS",
    "FIELD_LIMIT",
    "MAX_DEPTH",
    "MEMBER_COLUMNS",
    "NUDGES_PAUSED",
    "NUDGES_RESUMED",
    "PREFERENCE_EVENTS",
    "EventRow",
    "Kind",
    "MemberRow",
    "RowError",
    "RowProblem",
    "asks_to_restore_consent",
    "check_columns",
    "column_name",
    "csv_event_parser",
    "json_scalar",
    "load_json",
    "merge_member",
    "parse_event",
    "parse_member",
    "row_hash",
]
