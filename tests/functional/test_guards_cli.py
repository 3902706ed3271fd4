"""The seasonal and referral guards through the real console script: ``plan`` counts each
refusal under its reason and ``why`` explains it in words."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from nudgeflow.timeutil import to_epoch
from store.engine import create_store_engine
from store.migrate import upgrade
from store.schema import events, members
from tests.functional.runner import Nudgeflow

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 11, 20)

REFERRAL = """\
id: referral-bonus
name: Referral bonus
priority: 90
audience: {tags: {none_of: [staff]}}
trigger: {on: event, types: [referral_converted]}
referral: {max_rewarded: {max: 1, per: 30d}}
reward: {kind: credit, amount: "20.00 USD"}
email: {template: referral_bonus, subject: Thanks}
"""
WINTER = """\
id: winter-sale
name: Winter sale
audience: {tags: {none_of: [staff]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
starts_on: 2026-12-01
ends_on: 2026-12-24
email: {template: loyalist_discount, subject: Winter}
"""


def _at(day: date, hour: int) -> int:
    return to_epoch(datetime(day.year, day.month, day.day, hour, tzinfo=UTC))


@pytest.fixture
def nudgeflow(nudgeflow: Nudgeflow, tmp_path: Path) -> Nudgeflow:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    shutil.copy(ROOT / "campaigns/lifecycle.yaml", folder / "lifecycle.yaml")
    (folder / "referral-bonus.yaml").write_text(REFERRAL)
    (folder / "winter-sale.yaml").write_text(WINTER)
    url = f"sqlite:///{tmp_path / 'nudgeflow.db'}"
    engine = create_store_engine(url)
    upgrade(engine)
    people = {
        "ann": "ann@acme.io",  # refers her colleague
        "ann-colleague": "bea@acme.io",
        "cy": "c.y@gmail.com",  # refers himself under another address
        "cy-again": "cy+2@gmail.com",
        "dee": "dee@example.org",  # refers an existing customer
        "old-friend": "friend@example.net",
        "eve": "eve@example.org",  # a real referral
        "new-friend": "new@gmail.com",
    }
    now = datetime(2026, 1, 1)
    with engine.begin() as connection:
        keys = {}
        for member_id, email in people.items():
            result = connection.execute(
                sa.insert(members).values(
                    member_id=member_id, email=email, joined_at=_at(date(2026, 1, 2), 9),
                    email_opt_in=True, row_hash="-", created_at=now, updated_at=now,
                )
            )  # fmt: skip
            assert result.inserted_primary_key is not None
            keys[member_id] = result.inserted_primary_key[0]
        rows = []
        pairs = [("ann", "ann-colleague"), ("cy", "cy-again"), ("dee", "old-friend"),
                 ("eve", "new-friend")]  # fmt: skip
        for n, (advocate, friend) in enumerate(pairs):
            made = {"referral_id": f"r{n}"}
            converted = {**made, "referred_member_id": friend}
            rows += [
                (advocate, "referral_made", _at(date(2026, 11, 1), 9), made),
                (advocate, "referral_converted", _at(AS_OF, 15), converted),
                (friend, "purchase", _at(AS_OF, 14), None),
            ]
        rows.append(("old-friend", "purchase", _at(date(2026, 2, 1), 9), None))
        connection.execute(
            sa.insert(events),
            [
                {"event_id": f"e{i}", "member_pk": keys[m], "type": t, "occurred_at": at,
                 "properties": p, "amount_minor": 1000 if t == "purchase" else None,
                 "currency": "USD" if t == "purchase" else None}
                for i, (m, t, at, p) in enumerate(rows)
            ],
        )  # fmt: skip
    engine.dispose()
    return nudgeflow.configure(NUDGEFLOW_CAMPAIGNS_DIR=str(folder), NUDGEFLOW_DATABASE_URL=url)


def test_plan_counts_the_refusals_and_the_season(nudgeflow: Nudgeflow) -> None:
    result = nudgeflow("plan", "--as-of", AS_OF.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    plans = {c["id"]: c for c in json.loads(result.stdout)["campaigns"]}
    referral = plans["referral-bonus"]
    assert (referral["matched"], referral["selected"]) == (4, 1)
    assert [a["member_id"] for a in referral["actions"]] == ["eve"]
    excluded = {k: v for k, v in referral["excluded"].items() if v}
    assert excluded == {"self_referral": 2, "referral_existing_customer": 1}
    winter = plans["winter-sale"]
    assert winter["selected"] == 0
    assert winter["excluded"]["out_of_season"] == winter["matched"] == 8

    table = nudgeflow("plan", "--as-of", AS_OF.isoformat())
    assert "  excluded: self_referral 2 · referral_existing_customer 1\n" in table.stdout
    assert "— out of season (runs 2026-12-01 to 2026-12-24)" in table.stdout
    assert "  excluded: out_of_season 8\n" in table.stdout

    in_season = nudgeflow("plan", "--as-of", "2026-12-01", "--campaign", "winter-sale")
    assert "winter-sale (priority 0): matched 8, selected 8, held out 0\n" in in_season.stdout


def test_why_explains_each_refusal(nudgeflow: Nudgeflow) -> None:
    def why(member: str, as_of: date = AS_OF) -> str:
        result = nudgeflow("why", member, "--as-of", as_of.isoformat())
        assert result.returncode == 0, result.stderr
        return " ".join(result.stdout.split())  # long lines wrap at the terminal's width

    ann = why("ann")
    assert (
        "referral-bonus: excluded: self-referral (referral r0 converted on 2026-11-20: "
        "ann-colleague shares the advocate's email domain (acme.io))"
    ) in ann
    assert (
        "winter-sale: excluded: out of season (the campaign runs from 2026-12-01 to 2026-12-24)"
        in ann
    )
    assert "cy-again has the advocate's email (cy@gmail.com)" in why("cy")
    assert (
        "referral-bonus: excluded: referred an existing customer (referral r2 converted on "
        "2026-11-20: old-friend was a customer before the referral)"
    ) in why("dee")
    assert "referral-bonus: selected: credit 20.00 USD, email referral_bonus" in why("eve")
