"""Approvals through the nightly flow (Prefect engine): a night parks the costly rewards and
says how many wait; a later night expires the undecided one (its reservation released) and
issues and sends the approved one of the night before; both in the run's summary."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from bootstrap.app import process_app
from night.approvals import approve
from nudgeflow.timeutil import day_end
from store.ledger import campaign_balances, verify
from store.schema import actions, approvals, members
from tests.integration.community import DAY, Person, insert_people

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.prefect
D1, D2 = date(2026, 4, 29), date(2026, 4, 30)
CAMPAIGN = """
id: big-thanks
name: A big thank-you credit
audience: {stage: adopter}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: credit, amount: "75.00 USD", expires_in: 30d}
budget: {total: "1000.00 USD"}
email: {template: adopter_welcome, subject: Thanks}
response: {counts_as: [email_clicked], within: 1d}
"""


@pytest.fixture
def approval_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    (folder / "lifecycle.yaml").write_text((ROOT / "campaigns/lifecycle.yaml").read_text())
    (folder / "big-thanks.yaml").write_text(CAMPAIGN)
    (folder / "policy.yaml").write_text('approval_above: "50.00 USD"\n')
    monkeypatch.setenv("NUDGEFLOW_DATABASE_URL", db_url)
    monkeypatch.setenv("NUDGEFLOW_CAMPAIGNS_DIR", str(folder))
    monkeypatch.setenv("NUDGEFLOW_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("NUDGEFLOW_EMAIL__OUTBOX_DIR", str(tmp_path / "outbox"))
    process_app.cache_clear()
    yield db_url
    process_app().engine.dispose()
    process_app.cache_clear()


def test_the_night_parks_expires_and_sends_approved_rewards(
    prefect_harness: None, approval_env: str
) -> None:
    from flows.nightly import nightly
    from night.report import report_markdown

    old = day_end(D1, process_app().zone) - 100 * DAY
    engine = process_app().engine
    with engine.begin() as connection:
        insert_people(
            connection,
            [Person(m, None, [EventFact("purchase", old, 1000, "USD")]) for m in ("ann", "bob")],
        )

    first = nightly(D1)
    assert first["approvals"] == {"expired": 0, "waiting": 2}
    assert "**2 rewards** await approval" in report_markdown(first)
    with engine.connect() as connection:
        ids = dict(
            connection.execute(
                sa.select(members.c.member_id, actions.c.action_id).join(
                    members, members.c.id == actions.c.member_pk
                )
            ).all()
        )
    approve(engine, [ids["ann"]], by="finance", now=process_app().clock())
    # Bob's approval has run out before the next night. (Already: the nights run on the
    # real clock, and a fast machine starts the next one within a second of the request.)
    with engine.begin() as connection:
        connection.execute(
            sa.update(approvals)
            .where(approvals.c.action_id == ids["bob"])
            .values(expires_at=approvals.c.requested_at - timedelta(seconds=1))
        )

    second = nightly(D2)

    assert second["approvals"] == {"expired": 1, "waiting": 0}
    assert second["dispatch"]["sent"] == 1
    with engine.connect() as connection:
        stored = dict(connection.execute(sa.select(actions.c.action_id, actions.c.state)).all())
        balance = campaign_balances(connection)["big-thanks"]
        assert verify(connection).ok
    assert (stored[ids["ann"]], stored[ids["bob"]]) == ("sent", "rejected")
    assert (balance.reserved, balance.spent) == (0, 7500)
    outbox = Path(os.environ["NUDGEFLOW_EMAIL__OUTBOX_DIR"])
    assert [p.stem for p in (outbox / D2.isoformat()).glob("*.eml")] == [ids["ann"]]
