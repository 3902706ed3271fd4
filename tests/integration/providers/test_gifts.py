"""Gifts: a fulfilment request per action, exported and marked shipped through the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.campaign import Reward
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from providers.gifts import GiftIssuer
from providers.recording import RecordingIssuer, member_from_row
from providers.rewards import RewardMember
from store.reward_tables import gifts, load_member, rewards
from store.schema import members
from tests.unit.providers.test_issuers_local import CAMPAIGN

SCRIPT = shutil.which("nudgeflow") or str(Path(sys.executable).parent / "nudgeflow")
MUG = Reward("gift", Money(500, "USD"), item="mug")
ADDRESS = {
    "address_line1": "1 Rue de Rivoli",
    "city": "Paris",
    "postal_code": "75001",
    "region": "IDF",
}


def nudgeflow(engine: sa.Engine, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUDGEFLOW_")}
    env["NUDGEFLOW_DATABASE_URL"] = engine.url.render_as_string(hide_password=False)
    return subprocess.run(
        [SCRIPT, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _members(engine: sa.Engine, count: int, *, address: bool = True) -> list[int]:
    stamp = datetime(2026, 1, 1)
    pks = []
    with engine.begin() as connection:
        for n in range(count):
            pks.append(
                connection.execute(
                    sa.insert(members).values(
                        member_id=f"g{n}",
                        email=f"g{n}@example.com",
                        first_name="Ada",
                        last_name=f"Member{n}",
                        country="FR",
                        attributes=ADDRESS if address else {},
                        email_opt_in=True,
                        row_hash="x",
                        created_at=stamp,
                        updated_at=stamp,
                    )
                ).inserted_primary_key[0]
            )
    return pks


def _issue(engine: sa.Engine, pks: list[int]) -> RecordingIssuer:
    issuer = RecordingIssuer(engine, {"gift": GiftIssuer(engine)})
    for n, pk in enumerate(pks):
        with engine.connect() as connection:
            row = load_member(connection, pk)
        assert row is not None
        issuer.issue(f"{n:032x}", CAMPAIGN, MUG, member_from_row(row))
    return issuer


def test_a_gift_is_one_fulfilment_request_with_the_address(engine: sa.Engine) -> None:
    pks = _members(engine, 1)
    issuer = _issue(engine, pks)
    _issue(engine, pks)  # again: nothing new
    with engine.connect() as connection:
        [gift] = connection.execute(sa.select(gifts)).all()
        reward = connection.execute(sa.select(rewards)).one()
    assert (gift.item, gift.cost_minor, gift.currency, gift.status) == (
        "mug",
        500,
        "USD",
        "pending",
    )
    assert (gift.city, gift.postal_code, gift.country) == ("Paris", "75001", "FR")
    assert gift.recipient == "Ada Member0"
    assert (reward.kind, reward.provider, reward.provider_ref) == (
        "gift",
        "gift",
        f"gift-{gift.id}",
    )
    found = issuer.find(f"{0:032x}", CAMPAIGN, MUG, RewardMember(pks[0], "g0"))
    assert found is not None and found.value_text == "mug"


def test_a_gift_needs_an_address(engine: sa.Engine) -> None:
    [pk] = _members(engine, 1, address=False)
    with pytest.raises(RewardError, match=r"missing address_line1, city, postal_code"):
        _issue(engine, [pk])


def test_export_and_mark_shipped_through_the_cli(engine: sa.Engine, tmp_path: Path) -> None:
    _issue(engine, _members(engine, 3))
    exported = nudgeflow(engine, "gifts", "export", "--status", "pending", "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert [r["member_id"] for r in rows] == ["g0", "g1", "g2"]
    assert rows[0]["cost"] == "5.00" and rows[0]["address_line1"] == "1 Rue de Rivoli"

    # The shipping team sends back the first two rows with tracking numbers.
    shipped_file = tmp_path / "shipped.csv"
    with shipped_file.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "tracking"])
        writer.writeheader()
        writer.writerow({"id": rows[0]["id"], "tracking": "TRK0"})
        writer.writerow({"id": rows[1]["id"], "tracking": ""})
    for expected in ("marked 2 shipped, 0 already shipped", "marked 0 shipped, 2 already"):
        done = nudgeflow(engine, "gifts", "mark-shipped", str(shipped_file))
        assert done.returncode == 0, done.stderr
        assert expected in done.stdout

    by_id = nudgeflow(engine, "gifts", "mark-shipped", f"{rows[2]['id']},{rows[0]['id']}", "999")
    assert by_id.returncode == 1  # one id is unknown; the others are still recorded
    assert "marked 1 shipped, 1 already shipped" in by_id.stdout
    assert "gift 999: no such gift" in by_id.stderr
    with engine.connect() as connection:
        assert connection.execute(sa.select(gifts.c.status).distinct()).scalars().all() == [
            "shipped"
        ]
    shipped = json.loads(
        nudgeflow(engine, "gifts", "export", "--status", "shipped", "--format", "json").stdout
    )
    assert [(g["status"], g["tracking"]) for g in shipped] == [
        ("shipped", "TRK0"),
        ("shipped", None),
        ("shipped", None),
    ]
    assert all(g["shipped_at"] for g in shipped)


def test_shipping_a_gift_spends_its_cost_in_the_ledger_once(engine: sa.Engine) -> None:
    from datetime import UTC, date

    from providers.gifts import mark_shipped
    from store import ledger

    pks = _members(engine, 2)
    action_ids = [f"{n:032x}" for n in range(2)]
    with ledger.ledger_transaction(engine) as connection:
        for action_id in action_ids:
            assert ledger.reserve(
                connection,
                action_id,
                CAMPAIGN.id,
                MUG.cost or Money(0, "USD"),
                None,
                date(2026, 1, 1),
                fund_shortfall=True,
            )
    _issue(engine, pks)
    with ledger.ledger_transaction(engine) as connection:
        for action_id in action_ids:
            ledger.issue(connection, action_id, "gift", business_date=date(2026, 1, 1))
        ids = connection.execute(sa.select(gifts.c.id).order_by(gifts.c.id)).scalars().all()
    now = datetime(2026, 1, 3, tzinfo=UTC)
    for _ in range(2):  # shipping the same parcel twice spends nothing more
        with ledger.ledger_transaction(engine) as connection:
            mark_shipped(connection, [ids[0]], now)
    with engine.connect() as connection:
        assert ledger.reward_state(connection, action_ids[0]) == "redeemed"
        assert ledger.reward_state(connection, action_ids[1]) == "outstanding"
        states = dict(connection.execute(sa.select(rewards.c.action_id, rewards.c.state)).all())
        assert states == {action_ids[0]: "redeemed", action_ids[1]: "issued"}
        spent = {
            b.account: b.amount_minor
            for b in ledger.balances(connection)
            if b.account.endswith(":spent")
        }
        assert list(spent.values()) == [500]
        assert ledger.verify(connection).ok
