"""The operator listings (``store.reports``): runs, actions with their filters, and the
sends export, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from store.reports import PROVENANCE_COLUMNS, find_actions, iter_sends, list_runs
from tests.integration.dispatch_rows import AS_OF, insert_dispatched, insert_runs


@pytest.fixture
def dispatched(engine: sa.Engine) -> sa.Engine:
    with engine.begin() as connection:
        insert_dispatched(connection)
        insert_runs(connection)
    return engine


def _pairs(listed: list[dict[str, object]]) -> list[tuple[object, object, object]]:
    return [(a["as_of"], a["campaign_id"], a["member_id"]) for a in listed]


# --- actions ---------------------------------------------------------------------------


def test_actions_newest_night_first_with_member_ids(dispatched: sa.Engine) -> None:
    with dispatched.connect() as connection:
        listing = find_actions(connection)
    assert listing.total == 9
    assert _pairs(listing.actions) == [
        ("2026-07-01", "birthday", "ann"),
        ("2026-07-01", "thanks", "cat"),
        ("2026-07-01", "thanks", "dan"),
        ("2026-06-30", "thanks", "ann"),
        ("2026-06-30", "thanks", "bob"),
        ("2026-06-30", "winback", "cat"),
        ("2026-06-30", "winback", "dan"),
        ("2026-06-29", "winback", "ann"),
        ("2026-06-29", "winback", "bob"),
    ]


def test_an_action_is_ready_for_json(dispatched: sa.Engine) -> None:
    with dispatched.connect() as connection:
        (sent,) = find_actions(connection, state="sent").actions
    assert sent["state"] == "sent"
    assert sent["message_id"] == "sg-cat"
    assert sent["reward_ref"] == "promo_cat"
    assert sent["holdout"] is False
    assert sent["variant"] is None  # the campaign has no variants
    assert sent["reward"] == {"kind": "credit", "amount": "5.00", "currency": "USD"}
    assert (sent["cost_minor"], sent["currency"], sent["attempts"]) == (500, "USD", 1)
    assert sent["sent_at"] == "2026-06-30T22:06:00.000000+00:00"
    assert sent["reserved_at"] == "2026-06-30T22:00:00.000000+00:00"
    assert datetime.fromisoformat(sent["sending_at"]).tzinfo == UTC
    assert sent["created_at"] == "2026-06-29T22:00:00.000000+00:00"
    assert sent["approval"] is None  # it never waited for an approval
    assert sorted(sent) == sorted(
        [
            "action_id",
            "approval",
            "campaign_id",
            "member_id",
            "occurrence",
            "as_of",
            "state",
            "holdout",
            "reward",
            "cost_minor",
            "currency",
            "template",
            "variant",
            "reason",
            "reward_ref",
            "message_id",
            "attempts",
            "created_at",
            "updated_at",
            "reserved_at",
            "issued_at",
            "sending_at",
            "sent_at",
            "finished_at",
            # Which files planned it (none here: written straight into the store).
            "source_digest",
            "git_commit",
            "campaign_file",
            "campaign_file_sha256",
            "template_html_sha256",
            "template_text_sha256",
        ]
    )
    assert sent["source_digest"] is None


def test_action_filters_combine(dispatched: sa.Engine) -> None:
    with dispatched.connect() as connection:

        def find(**filters: object) -> list[tuple[object, object, object]]:
            return _pairs(find_actions(connection, **filters).actions)  # type: ignore[arg-type]

        assert find(state="unknown") == [("2026-06-30", "winback", "dan")]
        assert find(state="failed") == [
            ("2026-06-30", "thanks", "ann"),
            ("2026-06-30", "thanks", "bob"),
        ]
        assert find(campaign_id="thanks", as_of=date(2026, 7, 1)) == [
            ("2026-07-01", "thanks", "cat"),
            ("2026-07-01", "thanks", "dan"),
        ]
        assert find(member_id="ann") == [
            ("2026-07-01", "birthday", "ann"),
            ("2026-06-30", "thanks", "ann"),
            ("2026-06-29", "winback", "ann"),
        ]
        assert find(member_id="ann", campaign_id="winback", state="planned") == [
            ("2026-06-29", "winback", "ann")
        ]
        assert find(state="held_out") == [("2026-06-29", "winback", "bob")]
        assert find(member_id="nobody") == []
        assert find(state="sent", as_of=date(2026, 6, 29)) == []


def test_limit_keeps_the_total(dispatched: sa.Engine) -> None:
    with dispatched.connect() as connection:
        listing = find_actions(connection, limit=2)
        filtered = find_actions(connection, campaign_id="winback", limit=1)
        empty = find_actions(connection, state="sending", campaign_id="winback", limit=5)
    assert (len(listing.actions), listing.total) == (2, 9)
    assert (len(filtered.actions), filtered.total) == (1, 4)
    assert (empty.actions, empty.total) == ([], 0)


# --- sends -----------------------------------------------------------------------------


def test_sends_are_the_actions_that_reached_sending(dispatched: sa.Engine) -> None:
    with dispatched.connect() as connection:
        sends = list(iter_sends(connection))
    assert [(s["campaign_id"], s["member_id"], s["state"]) for s in sends] == [
        ("winback", "dan", "unknown"),  # oldest night first, then by sending time
        ("thanks", "ann", "failed"),
        ("winback", "cat", "sent"),
        ("thanks", "cat", "sending"),
    ]
    sent = sends[2]
    assert sent == {
        "action_id": sent["action_id"],
        "campaign_id": "winback",
        "member_id": "cat",
        "state": "sent",
        "message_id": "sg-cat",
        "reward_ref": "promo_cat",
        "as_of": "2026-06-30",
        "sending_at": "2026-06-30T22:05:00.000000+00:00",
        "sent_at": "2026-06-30T22:06:00.000000+00:00",
        "finished_at": "2026-06-30T22:06:00.000000+00:00",
        "reason": "",
        # Written straight into the store: no record of the files behind it.
        **dict.fromkeys(PROVENANCE_COLUMNS, ""),
    }
    assert len(sent["action_id"]) == 32
    assert sends[0]["message_id"] == "" and sends[0]["reason"] == "crashed while sending"


def test_sends_filters(dispatched: sa.Engine) -> None:
    with dispatched.connect() as connection:

        def members(**filters: object) -> list[tuple[str, str]]:
            rows = iter_sends(connection, **filters)  # type: ignore[arg-type]
            return [(s["campaign_id"], s["member_id"]) for s in rows]

        assert members(start=date(2026, 7, 1)) == [("thanks", "cat")]
        assert members(end=date(2026, 6, 30)) == [
            ("winback", "dan"),
            ("thanks", "ann"),
            ("winback", "cat"),
        ]
        assert members(start=AS_OF, end=AS_OF, campaign_id="thanks") == [("thanks", "ann")]
        assert members(end=date(2026, 6, 29)) == []


def test_sends_stream_lazily(dispatched: sa.Engine) -> None:
    with dispatched.connect() as connection:
        rows = iter_sends(connection)
        assert isinstance(rows, Iterator)
        first = next(rows)
        assert first["state"] == "unknown"
        assert len(list(rows)) == 3


# --- runs ------------------------------------------------------------------------------


def test_runs_newest_first_with_durations_and_counts(dispatched: sa.Engine) -> None:
    with dispatched.connect() as connection:
        listed = list_runs(connection, limit=10)
        latest_two = list_runs(connection, limit=2)
    assert [(r.as_of.isoformat(), r.status) for r in listed] == [
        ("2026-07-02", "running"),
        ("2026-07-01", "failed"),
        ("2026-06-30", "completed"),
        ("2026-06-29", "completed"),
    ]
    assert [r.id for r in latest_two] == [r.id for r in listed[:2]]
    running, failed, completed, old = listed
    assert running.duration is None and running.finished_at is None
    assert failed.error == "StoreError: the database went away"
    assert failed.duration == timedelta(hours=1, minutes=30)
    assert set(failed.counts.values()) == {None}
    assert completed.duration == timedelta(seconds=42.5)
    assert completed.started_at == datetime(2026, 7, 1, 1, tzinfo=UTC)
    assert completed.flow_run_id == "flow-630"
    assert completed.counts == {
        "planned": 3,
        "held_out": 1,
        "sent": 1,
        "failed": 2,
        "unknown": 1,
        "rewards_issued": 2,
    }
    assert old.counts["planned"] == 1 and old.counts["sent"] is None
    document = completed.as_dict()
    assert document["duration_seconds"] == 42.5
    assert document["started_at"] == "2026-07-01T01:00:00.000000+00:00"
    assert document["sent"] == 1 and document["error"] is None
    assert document["summary"]["dispatch"]["totals"]["failed"] == 2
