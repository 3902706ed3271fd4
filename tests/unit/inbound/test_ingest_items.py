"""Segment items → import records, and the keys that make webhook events take effect once."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbound.ingest_items import identify_key, identify_record, track_record
from inbound.sendgrid_events import event_key
from store.rows import RowError, parse_event

RECEIVED = 1_795_000_000


def test_a_track_item_becomes_the_event_record_an_import_reads() -> None:
    item = {
        "userId": 42,
        "event": "purchase",
        "messageId": "ajs-1",
        "properties": {"revenue": 9.5, "currency": "usd", "sku": "A"},
        "context": {"ip": "203.0.113.9"},
    }
    record = track_record(item, RECEIVED)
    assert record == {
        "event_id": "ajs-1",
        "member_id": "42",
        "type": "purchase",
        "occurred_at": "2026-11-18T11:06:40+00:00",  # no timestamp: when it was received
        "amount": 9.5,
        "currency": "usd",
        "properties": {"sku": "A"},
    }
    assert parse_event(record)[3:6] == (RECEIVED, 950, "USD")


def test_without_a_message_id_the_same_item_is_the_same_event() -> None:
    item = {"userId": "m1", "event": "signup", "timestamp": "2026-01-01T00:00:00Z"}
    first, again = track_record(item, RECEIVED), track_record(dict(item), RECEIVED + 5)
    assert first["event_id"] == again["event_id"]
    assert first["event_id"].startswith("ingest:")
    other = track_record({**item, "event": "login"}, RECEIVED)
    assert other["event_id"] != first["event_id"]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"event": "x"}, "userId"),
        ({"userId": "", "event": "x"}, "userId"),
        ({"userId": True, "event": "x"}, "userId"),
        ({"userId": "m", "event": "x", "properties": []}, "properties"),
        ({"userId": "m", "event": "x", "messageId": 7}, "messageId"),
    ],
)
def test_track_items_without_what_they_need(item: dict[str, Any], field: str) -> None:
    with pytest.raises(RowError) as raised:
        track_record(item, RECEIVED)
    assert raised.value.field == field


def test_identify_traits_become_member_columns_and_attributes() -> None:
    record = identify_record(
        {"userId": "m1", "traits": {"firstName": "Ada", "createdAt": "2026-01-01", "plan": "pro"}}
    )
    assert record == {
        "member_id": "m1",
        "first_name": "Ada",
        "joined_at": "2026-01-01",
        "plan": "pro",
    }
    with pytest.raises(RowError):
        identify_record({"userId": "m1", "traits": {"member_id": "someone else"}})


def test_identify_keys() -> None:
    assert identify_key({"messageId": "abc"}) == "identify:abc"
    item = {"userId": "m1", "traits": {"a": 1}}
    assert identify_key(item) == identify_key({"traits": {"a": 1}, "userId": "m1"})
    assert identify_key(item).startswith("identify:sha256:")


@given(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=5))
def test_an_event_key_depends_only_on_the_event(event: dict[str, Any]) -> None:
    key = event_key(event)
    assert key == event_key(dict(reversed(list(event.items()))))
    assert key.startswith("sendgrid:") and len(key) <= 200
