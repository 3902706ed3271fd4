"""``nudgeflow members forget`` and ``nudgeflow members export`` as a user runs them: the
export holds the member, forget prints the receipt and leaves no trace of them in the
database file, a second forget changes nothing, an unknown member is one line, and an
import of the same member is refused by line until ``--allow-returning``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.functional.runner import Nudgeflow

MEMBERS = (
    "member_id,email,first_name,last_name,birthday,address_line1,city,postal_code,country\n"
    "m1,Grace.Hopper@Example.net,Grace,Hopper,1906-12-09,1 Compiler Way,Arlington,22201,us\n"
    "m2,alan@example.net,Alan,Turing,,,,,\n"
)
EVENTS = (
    "event_id,member_id,type,occurred_at,amount,currency,properties\n"
    'e1,m1,purchase,2026-03-01T10:00:00Z,25.00,USD,"{""note"": ""for Grace Hopper""}"\n'
    'e2,m2,referral_made,2026-03-02T10:00:00Z,,,"{""friend"": ""grace.hopper@example.net""}"\n'
)
TRACES = ("grace.hopper@example.net", "hopper", "1 compiler way")


def _database_text(home: Path) -> str:
    return "\n".join(
        path.read_bytes().decode("latin-1").lower()
        for path in home.glob("nudgeflow.db*")
        if path.is_file()
    )


def test_export_then_forget_then_refuse_the_return(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    (tmp_path / "members.csv").write_text(MEMBERS)
    (tmp_path / "events.csv").write_text(EVENTS)
    assert nudgeflow("members", "import", "members.csv").returncode == 0
    assert nudgeflow("events", "import", "events.csv").returncode == 0

    exported = nudgeflow("members", "export", "m1")
    assert exported.returncode == 0, exported.stderr
    document = json.loads(exported.stdout)
    assert document["member"]["email"] == "Grace.Hopper@example.net"
    assert document["member"]["attributes"]["address_line1"] == "1 Compiler Way"
    assert [e["event_id"] for e in document["events"]] == ["e1"]
    assert document["events"][0]["occurred_at"] == "2026-03-01T10:00:00Z"
    to_file = nudgeflow("members", "export", "m1", "--out", "m1.json")
    assert to_file.returncode == 0, to_file.stderr
    assert json.loads((tmp_path / "m1.json").read_text())["member"]["member_id"] == "m1"

    forgot = nudgeflow("members", "forget", "m1", "--reason", "ticket 7", "--by", "dpo")
    assert forgot.returncode == 0, forgot.stderr
    assert forgot.stdout.startswith("forgot member m1 (receipt 1, ")
    assert "by dpo); kept as " in forgot.stdout
    assert "event properties 1" in forgot.stdout
    text = _database_text(tmp_path)
    for trace in TRACES:
        assert trace not in text, trace
    assert "alan@example.net" in text

    again = nudgeflow("members", "forget", "m1")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("member m1 was already forgotten on ")
    assert "(receipt 1); nothing changed" in again.stdout

    listed = nudgeflow("members", "erasures", "--json")
    assert listed.returncode == 0, listed.stderr
    (receipt,) = json.loads(listed.stdout)
    assert (receipt["receipt"], receipt["erased_by"], receipt["reason"]) == (1, "dpo", "ticket 7")
    assert receipt["removed"]["event_properties"] == 1
    assert receipt["removed"]["other_members_event_properties"] == 1
    table = nudgeflow("members", "erasures")
    assert table.stdout.startswith("1  ") and "reason: ticket 7" in table.stdout

    gone = nudgeflow("members", "export", "m1")
    assert gone.returncode == 1
    assert gone.stderr.startswith("error: member 'm1' was forgotten on ")
    assert gone.stdout == ""

    verified = nudgeflow("ledger", "verify")
    assert verified.returncode == 0, verified.stderr

    back = nudgeflow("members", "import", "members.csv")
    assert back.returncode == 1
    assert "members.csv:2: member_id: this member_id belongs to a member forgotten on" in (
        back.stderr
    )
    assert "rejected 1" in back.stdout
    rejects = (tmp_path / "members.csv.rejects.csv").read_text().splitlines()
    assert rejects[1].startswith("2,member_id: this member_id belongs to a member forgotten")

    allowed = nudgeflow("members", "import", "members.csv", "--allow-returning")
    assert allowed.returncode == 0, allowed.stderr
    assert "imported 1" in allowed.stdout
    assert "1 forgotten members taken back (--allow-returning)" in allowed.stdout


def test_unknown_member_is_one_line(nudgeflow: Nudgeflow) -> None:
    for command in ("forget", "export"):
        result = nudgeflow("members", command, "nobody")
        assert result.returncode == 1
        assert result.stderr == "error: no member with member_id 'nobody'\n"
        assert result.stdout == ""


def test_forget_refuses_the_shipped_signing_key(nudgeflow: Nudgeflow, tmp_path: Path) -> None:
    (tmp_path / "members.csv").write_text(MEMBERS)
    assert nudgeflow("members", "import", "members.csv").returncode == 0
    result = nudgeflow("members", "forget", "m1", NUDGEFLOW_SIGNING_KEY="change-me")
    assert result.returncode == 2
    assert result.stderr.startswith("error: NUDGEFLOW_SIGNING_KEY: still the default")
    assert len(result.stderr.splitlines()) == 1
