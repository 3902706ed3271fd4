"""Approvals for costly rewards, on SQLite and PostgreSQL, against the file outbox and the
local issuer: dispatch reserves and parks rewards above ``approval_above``; approving lets
the next dispatch (a later night's) issue and send them; rejecting and expiry release the
reservation; every decision is recorded once, with who and when; the ledger verifies and its
statement ties out throughout."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from bootstrap.app import App
from night.approvals import (
    ApprovalError,
    approve,
    expire_approvals,
    listing,
    reject,
    waiting,
)
from night.explain import approval_lines, explain_member
from night.plan import plan, rehearse
from night.refresh import refresh
from nudgeflow.errors import NotFoundError
from nudgeflow.timeutil import Clock
from planning.campaign_files import load_campaign_set
from store import ledger
from store.ledger.statement import statement
from store.schema import approvals
from tests.integration import nights
from tests.integration.night.test_dispatch import (
    AS_OF,
    ZONE,
    World,
    action_rows,
    close_world,
    ledger_kinds,
    make_world,
    members_for,
    prepare,
    verify_ok,
)

COSTLY = """
id: costly
name: Costly credit
priority: 50
audience: {tags: {any_of: [costly]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: credit, amount: "75.00 USD", expires_in: 30d}
budget: {total: "1000.00 USD"}
email: {template: nudge, subject: "A big credit"}
response: {counts_as: [email_clicked], within: 7d}
"""
# The same reward, with its own threshold above it: the campaign's replaces the policy's.
TRUSTED = (
    COSTLY.replace("id: costly", "id: trusted")
    .replace("[costly]", "[trusted]")
    .replace("priority: 50", 'priority: 45\napproval_above: "100.00 USD"')
)
POLICY = (
    "frequency_caps: [{max: 5, per: 7d}]\ncategories: [rewards, surveys]\n"
    'approval_above: "50.00 USD"\napproval_expires_after: 3d\n'
)
STARTED = datetime(2026, 5, 5, 1, 0, tzinfo=UTC)  # the night of AS_OF, run after midnight


class Clockwork:
    """A clock a test moves forward."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    built = make_world(db_url, tmp_path)
    (built.campaigns_dir / "policy.yaml").write_text(POLICY)
    (built.campaigns_dir / "costly.yaml").write_text(COSTLY)
    (built.campaigns_dir / "trusted.yaml").write_text(TRUSTED)
    yield built
    close_world(built)


def parked(world: World, clock: Clock) -> tuple[App, dict[str, str]]:
    """The night planned and dispatched: member_id → action_id."""
    app = world.app(clock)
    planned = prepare(world, app, members_for("costly", "trusted", "credit", n=3))
    nights.dispatch(app, AS_OF)
    return app, planned


def balances(app: App) -> dict[str, ledger.CampaignBalance]:
    with app.engine.connect() as connection:
        return ledger.campaign_balances(connection)


def ties_out(app: App) -> None:
    with app.engine.connect() as connection:
        assert statement(connection, AS_OF.year, AS_OF.month).ties_out


def test_a_reward_above_the_threshold_is_reserved_and_waits(world: World) -> None:
    clock = Clockwork(STARTED)
    app, planned = parked(world, clock)

    rows = action_rows(app)
    states = {m: r["state"] for m, r in rows.items()}
    assert {states[f"costly-{i}"] for i in range(3)} == {"awaiting_approval"}
    # the campaign's own threshold (100.00) replaces the policy's (50.00); cheap ones pass
    assert {states[f"trusted-{i}"] for i in range(3)} == {"sent"}
    assert {states[f"credit-{i}"] for i in range(3)} == {"sent"}
    for i in range(3):
        action_id = planned[f"costly-{i}"]
        assert ledger_kinds(app, action_id) == ["reserve"]
        assert rows[f"costly-{i}"]["reward_ref"] is None
        assert rows[f"costly-{i}"]["reserved_at"] is not None
    assert balances(app)["costly"].reserved == 3 * 7500
    waiting_now = listing(app.engine)
    assert {a.action_id for a in waiting_now} == {planned[f"costly-{i}"] for i in range(3)}
    assert {a.cost_minor for a in waiting_now} == {7500}
    assert {a.threshold for a in waiting_now} == {"50.00 USD"}
    assert {a.expires_at for a in waiting_now} == {STARTED + timedelta(days=3)}
    assert waiting(app.engine) == 3
    # a second dispatch of the night leaves them waiting: nothing issued, nothing sent
    again = nights.dispatch(app, AS_OF)
    assert again.result.total("sent") == 0
    assert {action_rows(app)[f"costly-{i}"]["state"] for i in range(3)} == {"awaiting_approval"}
    assert not list((world.outbox_dir / AS_OF.isoformat()).glob(f"{planned['costly-0']}*"))
    verify_ok(app)
    ties_out(app)


def test_approved_rewards_are_issued_and_sent_by_the_next_nights_dispatch(world: World) -> None:
    clock = Clockwork(STARTED)
    app, planned = parked(world, clock)
    chosen = [planned["costly-0"], planned["costly-1"]]

    clock.now = STARTED + timedelta(hours=9)
    decided = approve(app.engine, chosen, by="finance-ann", now=clock())

    assert sorted(decided.done) == sorted(chosen) and not decided.before
    rows = action_rows(app)
    assert rows["costly-0"]["state"] == "reserved"
    assert rows["costly-2"]["state"] == "awaiting_approval"
    with app.engine.connect() as connection:
        recorded = {
            r.action_id: r
            for r in connection.execute(
                sa.select(approvals).where(approvals.c.decision.is_not(None))
            )
        }
    assert set(recorded) == set(chosen)
    assert {r.decided_by for r in recorded.values()} == {"finance-ann"}
    assert {r.decided_at for r in recorded.values()} == {datetime(2026, 5, 5, 10, 0)}
    # approving again changes nothing and says who approved first
    again = approve(app.engine, chosen, by="someone-else", now=clock())
    assert again.done == [] and set(again.before) == set(chosen) and not again.conflicts()
    assert {a.decided_by for a in again.before.values()} == {"finance-ann"}
    verify_ok(app)

    # the next night's dispatch picks up the approved actions of the night before
    next_night = AS_OF + timedelta(days=1)
    clock.now = STARTED + timedelta(days=1)
    run = nights.dispatch(app, next_night)
    assert run.result.total("sent") == 2
    rows = action_rows(app)
    for member_id in ("costly-0", "costly-1"):
        action_id = planned[member_id]
        assert rows[member_id]["state"] == "sent"
        assert rows[member_id]["reward_ref"]
        assert ledger_kinds(app, action_id) == ["reserve", "issue", "redeem"]
        # sent by the night that dispatched it, in its outbox folder
        assert (world.outbox_dir / next_night.isoformat() / f"{action_id}.eml").exists()
    assert rows["costly-2"]["state"] == "awaiting_approval"
    b = balances(app)["costly"]
    assert (b.reserved, b.spent) == (7500, 2 * 7500)
    # a rejection of an approved action is refused
    late = reject(
        app.engine, {chosen[0]: "too late"}, by="bob", now=clock(), business_date=next_night
    )
    assert late.done == [] and set(late.conflicts()) == {chosen[0]}
    verify_ok(app)
    ties_out(app)


def test_a_rejection_releases_the_reservation_and_records_the_reason(world: World) -> None:
    clock = Clockwork(STARTED)
    app, planned = parked(world, clock)
    target = planned["costly-2"]
    before = balances(app)["costly"]

    decided = reject(
        app.engine,
        {target: "over the quarterly limit"},
        by="finance-ann",
        now=clock(),
        business_date=AS_OF,
    )

    assert decided.done == [target]
    row = action_rows(app)["costly-2"]
    assert row["state"] == "rejected"
    assert row["reason"] == "rejected by finance-ann: over the quarterly limit"
    assert row["finished_at"] is not None
    assert ledger_kinds(app, target) == ["reserve", "void"]
    after = balances(app)["costly"]
    assert after.reserved == before.reserved - 7500
    assert after.budget == before.budget + 7500
    # nothing later issues it: not by an approval, not by a dispatch
    assert approve(app.engine, [target], by="bob", now=clock()).conflicts()
    nights.dispatch(app, AS_OF + timedelta(days=1))
    assert action_rows(app)["costly-2"]["state"] == "rejected"
    assert ledger_kinds(app, target) == ["reserve", "void"]
    verify_ok(app)
    ties_out(app)


def test_undecided_approvals_expire_and_release_their_reservations(world: World) -> None:
    clock = Clockwork(STARTED)
    app, planned = parked(world, clock)
    approve(app.engine, [planned["costly-0"]], by="ann", now=clock())

    clock.now = STARTED + timedelta(days=3) - timedelta(seconds=1)
    assert expire_approvals(app.engine, now=clock(), business_date=AS_OF) == 0
    clock.now = STARTED + timedelta(days=3)
    # past its expiry, before the night expired it: too late to approve
    late = approve(app.engine, [planned["costly-1"]], by="ann", now=clock())
    assert late.done == [] and set(late.late) == {planned["costly-1"]} and not late.before
    expired = expire_approvals(app.engine, now=clock(), business_date=AS_OF + timedelta(days=3))

    assert expired == 2
    rows = action_rows(app)
    assert rows["costly-0"]["state"] == "reserved"  # decided before: untouched
    for member_id in ("costly-1", "costly-2"):
        assert rows[member_id]["state"] == "rejected"
        assert rows[member_id]["reason"] == "expired by nudgeflow: no decision before it expired"
        assert ledger_kinds(app, planned[member_id]) == ["reserve", "void"]
    assert waiting(app.engine) == 0
    assert expire_approvals(app.engine, now=clock(), business_date=AS_OF) == 0
    assert balances(app)["costly"].reserved == 7500
    verify_ok(app)


def test_unknown_ids_decide_nothing(world: World) -> None:
    clock = Clockwork(STARTED)
    app, planned = parked(world, clock)
    with pytest.raises(NotFoundError, match="no approval for action nope"):
        approve(app.engine, [planned["costly-0"], "nope"], by="ann", now=clock())
    with pytest.raises(NotFoundError, match="no approval"):  # a sent action has none
        reject(
            app.engine,
            {planned["credit-0"]: "x"},
            by="ann",
            now=clock(),
            business_date=AS_OF,
        )
    assert waiting(app.engine) == 3
    assert ApprovalError.exit_code == 1


def test_why_says_a_selected_reward_will_wait_and_shows_the_decision(world: World) -> None:
    clock = Clockwork(STARTED)
    app = world.app(clock)
    with app.engine.begin() as connection:
        world.people(connection, members_for("costly", "trusted", n=1))
    refresh(app.night(AS_OF))
    campaign_set = load_campaign_set(app.settings.campaigns_dir)
    with rehearse(app.engine, campaign_set, ZONE, "USD", AS_OF) as rehearsal:
        costly = dict(explain_member(rehearsal, "costly-0"))["costly"]
        trusted = dict(explain_member(rehearsal, "trusted-0"))["trusted"]
    assert costly.startswith("selected: ")
    assert costly.endswith(
        "; its reward (75.00 USD) is above approval_above (50.00 USD): reserved, then it "
        "waits for approval before it is issued"
    )
    assert "approval" not in trusted

    planned = prepare_again(world, app)
    nights.dispatch(app, AS_OF)
    reject(
        app.engine,
        {planned["costly-0"]: "not this quarter"},
        by="ann",
        now=clock(),
        business_date=AS_OF,
    )
    with rehearse(app.engine, campaign_set, ZONE, "USD", AS_OF) as rehearsal:
        lines = approval_lines(rehearsal, "costly-0")
    assert lines == [
        (
            "costly",
            f"action {planned['costly-0']} of {AS_OF} rejected by ann 2026-05-05 01:00 UTC: "
            "not this quarter (now rejected)",
        )
    ]


def prepare_again(world: World, app: App) -> dict[str, str]:
    """Fund and plan the night for the members already inserted; member_id → action_id."""
    campaign_set = load_campaign_set(app.settings.campaigns_dir)
    with ledger.ledger_transaction(app.engine) as connection:
        ledger.sync_funding(connection, campaign_set.campaigns, AS_OF, ZONE)
    plan(app.night(AS_OF))
    return {m: r["action_id"] for m, r in action_rows(app).items()}


TIGHT = """
id: tight
name: A costly credit on a tight budget
priority: 60
audience: {tags: {any_of: [tight]}}
trigger: {on: schedule}
eligibility: {once_per_member: true}
reward: {kind: credit, amount: "75.00 USD", expires_in: 30d}
budget: {total: "150.00 USD"}
email: {template: nudge, subject: "A big credit"}
response: {counts_as: [email_clicked], within: 7d}
"""


def test_the_plan_counts_waiting_rewards_against_budget_and_caps_but_not_rejected(
    world: World,
) -> None:
    (world.campaigns_dir / "tight.yaml").write_text(TIGHT)
    (world.campaigns_dir / "policy.yaml").write_text(
        POLICY.replace("[{max: 5, per: 7d}]", "[{max: 1, per: 7d}]")
    )
    clock = Clockwork(STARTED)
    app, _ = parked(world, clock)  # no one is tagged tight yet
    with app.engine.begin() as connection:
        world.people(connection, {"tight": ["tight-0", "tight-1", "tight-2"]})
    night2 = AS_OF + timedelta(days=1)
    refresh(app.night(night2))
    plan(app.night(night2))
    nights.dispatch(app, night2)
    rows = action_rows(app)
    # 150.00 USD covers two: both reserved and waiting; the third is left out for budget
    assert sorted(rows[f"tight-{i}"]["state"] for i in range(2)) == ["awaiting_approval"] * 2
    assert "tight-2" not in rows
    # a waiting reward counts against the frequency cap (1 per 7 days): costly-0's waits
    night3 = AS_OF + timedelta(days=2)
    (world.campaigns_dir / "later.yaml").write_text(
        COSTLY.replace("id: costly", "id: later")
        .replace("priority: 50", "priority: 70")
        .replace('amount: "75.00 USD"', 'amount: "5.00 USD"')
    )
    reject(
        app.engine,
        {rows["tight-0"]["action_id"]: "no"},
        by="ann",
        now=clock(),
        business_date=night2,
    )
    app = world.app(clock)
    refresh(app.night(night3))
    summary = plan(app.night(night3))
    by_campaign = {c["id"]: c for c in summary["campaigns"]}
    assert by_campaign["later"]["selected"] == 0
    assert by_campaign["later"]["excluded"]["frequency_cap"] == 3  # costly-0..2 wait
    # the rejected reward no longer draws on the budget: tight-2 now fits
    assert by_campaign["tight"]["selected"] == 1
    assert action_rows(app)["tight-2"]["state"] == "planned"
