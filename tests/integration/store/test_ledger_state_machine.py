"""A hypothesis state machine over the ledger: reserve, issue, redeem, expire, void, a crash
(a move rolled back half-way) and a rerun (a move already done, repeated). After every step
the ledger verifies (balanced, chain intact, nothing over-committed), the campaign's balances
match a model, no budget is negative and nothing was posted twice."""

from __future__ import annotations

import uuid
from datetime import date
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from domain.campaign import Budget
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from store import ledger
from store.ledger import ledger_transaction, tables

ACTIONS = [f"a{i}" for i in range(6)]
KINDS = ("reserve", "issue", "redeem", "expire", "void")
DAY = date(2026, 11, 3)


class _Campaign:
    def __init__(self, cid: str, total: int) -> None:
        self.id = cid
        self.budget = Budget(Money(total, "USD"), None)


class Crash(Exception):
    """Stands for the process dying before the transaction commits."""


class _Model:
    """What the ledger should hold for one campaign."""

    def __init__(self, funded: int) -> None:
        self.balance = {"budget": funded, "reserved": 0, "outstanding": 0, "spent": 0}
        self.kinds: dict[str, set[str]] = {a: set() for a in ACTIONS}
        self.estimate: dict[str, int] = {}
        self.posted = 1  # the funding transaction

    def state(self, action: str) -> str:
        kinds = self.kinds[action]
        for kind, state in (("redeem", "redeemed"), ("void", "voided"), ("expire", "expired")):
            if kind in kinds:
                return state
        if "issue" in kinds:
            return "outstanding"
        return "reserved" if "reserve" in kinds else "none"

    def outcome(self, kind: str, action: str, amount: int) -> str:
        """post | noop | refused | error"""
        kinds, state = self.kinds[action], self.state(action)
        if kind == "reserve":
            if "reserve" in kinds:
                return "error" if state in ("voided", "expired") else "noop"
            return "post" if amount <= self.balance["budget"] else "refused"
        if kind in kinds:
            return "noop"
        allowed = {
            "issue": ("reserved",),
            "redeem": ("outstanding", "expired"),
            "expire": ("outstanding",),
            "void": ("reserved", "outstanding"),
        }[kind]
        return "post" if state in allowed else "error"

    def apply(self, kind: str, action: str, amount: int) -> None:
        b, state = self.balance, self.state(action)
        estimate = self.estimate.get(action, amount)
        moves = {
            "reserve": [("budget", -amount), ("reserved", amount)],
            "issue": [("reserved", -estimate), ("outstanding", estimate)],
            "expire": [("outstanding", -estimate), ("budget", estimate)],
            "void": [
                ("reserved" if state == "reserved" else "outstanding", -estimate),
                ("budget", estimate),
            ],
        }
        if kind == "redeem":
            if state == "expired":
                moves["redeem"] = [("budget", -amount), ("spent", amount)]
            else:
                moves["redeem"] = [
                    ("outstanding", -estimate),
                    ("spent", amount),
                    ("budget", estimate - amount),
                ]
        for account, delta in moves[kind]:
            b[account] += delta
        if kind == "reserve":
            self.estimate[action] = amount
        self.kinds[action].add(kind)
        self.posted += 1


def _machine(engine: sa.Engine) -> type[RuleBasedStateMachine]:
    class LedgerMachine(RuleBasedStateMachine):
        @initialize(funded=st.integers(0, 3000))
        def fund(self, funded: int) -> None:
            # A campaign of its own per run: the database (and its chain) is shared.
            self.cid = f"c-{uuid.uuid4().hex[:10]}"
            self.actions = {a: f"{self.cid}-{a}" for a in ACTIONS}
            with ledger_transaction(engine) as connection:
                ledger.sync_funding(
                    connection,
                    [_Campaign(self.cid, funded)],  # type: ignore[list-item]
                    DAY,
                    ZoneInfo("UTC"),
                )
            self.model = _Model(funded)
            if funded == 0:
                self.model.posted = 0  # nothing to fund: nothing posted

        def _do(self, connection: sa.Connection, kind: str, action: str, amount: int) -> object:
            action_id = self.actions[action]
            money = Money(amount, "USD")
            if kind == "reserve":
                return ledger.reserve(connection, action_id, self.cid, money, "r" * 16, DAY)
            if kind == "issue":
                return ledger.issue(connection, action_id, f"promo-{action}")
            if kind == "redeem":
                return ledger.redeem(connection, action_id, money, f"in-{action}")
            if kind == "expire":
                return ledger.expire(connection, action_id)
            return ledger.void(connection, action_id, "failed")

        def _amount(self, kind: str, action: str, draw: int) -> int:
            """Reservations ask for ``draw``; redemptions cost at most what keeps the budget
            non-negative (an overrun beyond the budget is tested on its own)."""
            if kind != "redeem":
                return draw
            room = self.model.balance["budget"]
            if self.model.state(action) != "expired":
                room += self.model.estimate.get(action, 0)
            return min(draw, room)

        def _move(self, kind: str, action: str, draw: int) -> None:
            amount = self._amount(kind, action, draw)
            expected = self.model.outcome(kind, action, amount)
            try:
                with ledger_transaction(engine) as connection:
                    result = self._do(connection, kind, action, amount)
            except RewardError:
                assert expected == "error", (kind, action, expected)
                return
            assert expected != "error", (kind, action)
            if expected == "post":
                assert result is True
                self.model.apply(kind, action, amount)
            elif expected == "refused":
                assert result is False
            else:  # a repeat: reserve still answers True, the others say "nothing new"
                assert result is (kind == "reserve")

        @rule(
            kind=st.sampled_from(KINDS), action=st.sampled_from(ACTIONS), draw=st.integers(0, 900)
        )
        def move(self, kind: str, action: str, draw: int) -> None:
            self._move(kind, action, draw)

        @rule(action=st.sampled_from(ACTIONS), draw=st.integers(0, 900), data=st.data())
        def rerun(self, action: str, draw: int, data: st.DataObject) -> None:
            done = sorted(self.model.kinds[action])
            if not done:
                return
            kind = data.draw(st.sampled_from(done))
            self._move(kind, action, draw)

        @rule(
            kind=st.sampled_from(KINDS), action=st.sampled_from(ACTIONS), draw=st.integers(0, 900)
        )
        def crash(self, kind: str, action: str, draw: int) -> None:
            amount = self._amount(kind, action, draw)
            try:
                with ledger_transaction(engine) as connection:
                    self._do(connection, kind, action, amount)
                    raise Crash
            except (Crash, RewardError):
                pass  # rolled back: the model does not change

        @invariant()
        def ledger_holds(self) -> None:
            if not hasattr(self, "model"):
                return
            with engine.connect() as connection:
                result = ledger.verify(connection)
                assert result.ok, result.problems
                found = ledger.campaign_balances(connection).get(self.cid)
                t = tables.ledger_transactions.c
                posted = connection.execute(
                    sa.select(sa.func.count()).where(t.campaign_id == self.cid)
                ).scalar_one()
                doubles = connection.execute(
                    sa.select(t.action_id, t.kind)
                    .where(t.campaign_id == self.cid, t.action_id.is_not(None))
                    .group_by(t.action_id, t.kind)
                    .having(sa.func.count() > 1)
                ).all()
            balance = self.model.balance
            if found is not None:
                assert found.budget >= 0
                assert (found.budget, found.reserved, found.outstanding, found.spent) == (
                    balance["budget"],
                    balance["reserved"],
                    balance["outstanding"],
                    balance["spent"],
                )
            else:
                assert self.model.posted == 0
            assert posted == self.model.posted
            assert doubles == []

    return LedgerMachine


def test_ledger_invariants_hold_after_every_step(engine: sa.Engine) -> None:
    run_state_machine_as_test(
        _machine(engine),
        settings=settings(
            max_examples=30,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
