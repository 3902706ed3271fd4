"""The reward ledger on SQLite and PostgreSQL: funding follows the files, each move and its
refusal, append-only triggers, verify catching tampering, export columns, the planner's view."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from domain import postings
from domain.campaign import Budget
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from store import ledger
from store.ledger import journal, ledger_transaction, tables

UTC_ZONE = ZoneInfo("UTC")
NOV = date(2026, 11, 3)


@dataclass(frozen=True)
class FakeCampaign:
    """What the ledger reads of a compiled campaign: its id and budget."""

    id: str
    budget: Budget | None


def usd(text: str) -> Money:
    return Money.parse(f"{text} USD")


def campaign(cid: str, total: str | None = None, per_month: str | None = None) -> FakeCampaign:
    return FakeCampaign(
        cid,
        Budget(usd(total) if total else None, usd(per_month) if per_month else None),
    )


def sync(engine: sa.Engine, campaigns: list[FakeCampaign], as_of: date = NOV) -> list[str]:
    with ledger_transaction(engine) as connection:
        changes = ledger.sync_funding(connection, campaigns, as_of, UTC_ZONE)  # type: ignore[arg-type]
    return [f"{c.kind} {c.amount}" for c in changes]


def state(engine: sa.Engine, cid: str = "c") -> ledger.CampaignBalances:
    with engine.connect() as connection:
        return ledger.campaign_balances(connection)[cid]


def check(engine: sa.Engine) -> ledger.VerifyResult:
    with engine.connect() as connection:
        return ledger.verify(connection)


def reserve(engine: sa.Engine, action: str, amount: str = "10.00", cid: str = "c") -> bool:
    with ledger_transaction(engine) as connection:
        return ledger.reserve(connection, action, cid, usd(amount), "ref0123456789abc", NOV)


def count_transactions(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT count(*) FROM ledger_transactions").scalar())


# --- funding ----------------------------------------------------------------------------


def test_funding_follows_the_campaign_file_idempotently(engine: sa.Engine) -> None:
    assert sync(engine, [campaign("c", "100.00")]) == ["fund 100.00 USD"]
    assert sync(engine, [campaign("c", "100.00")]) == []
    assert sync(engine, [campaign("c", "150.00")]) == ["fund 50.00 USD"]
    assert sync(engine, [campaign("c", "120.00")]) == ["defund 30.00 USD"]
    assert sync(engine, [campaign("c", "120.00")]) == []
    assert state(engine).funded == state(engine).budget == 12000
    assert check(engine).ok


def test_defunding_never_takes_money_that_is_committed(engine: sa.Engine) -> None:
    sync(engine, [campaign("c", "30.00")])
    assert reserve(engine, "a1", "25.00")
    # The file drops to 10.00, but 25.00 is reserved: only the 5.00 still free goes back.
    assert sync(engine, [campaign("c", "10.00")]) == ["defund 5.00 USD"]
    assert state(engine).budget == 0
    with ledger_transaction(engine) as connection:
        ledger.void(connection, "a1", "cancelled")
    # Released: the next sync returns what exceeds the file (25.00 - 10.00).
    assert sync(engine, [campaign("c", "10.00")]) == ["defund 15.00 USD"]
    assert state(engine).funded == 1000
    assert check(engine).ok


def test_a_removed_campaign_is_defunded_and_an_unbudgeted_one_left_alone(
    engine: sa.Engine,
) -> None:
    sync(engine, [campaign("c", "40.00"), campaign("d", "20.00")])
    assert sync(engine, [campaign("c", "40.00"), FakeCampaign("d", None)]) == []
    assert sync(engine, [campaign("c", "40.00")]) == ["defund 20.00 USD"]
    assert state(engine, "d").funded == 0


def test_per_month_allowance_is_topped_up_each_month_capped_by_total(engine: sa.Engine) -> None:
    files = [campaign("c", total="25.00", per_month="10.00")]
    assert sync(engine, files, date(2026, 11, 3)) == ["fund 10.00 USD"]
    assert reserve(engine, "a1", "4.00")
    assert sync(engine, files, date(2026, 11, 20)) == []
    # December: 4.00 was committed before; the allowance is 10.00 on top (the 6.00 unused in
    # November does not carry over).
    assert sync(engine, files, date(2026, 12, 1)) == ["fund 4.00 USD"]  # to 4 + 10
    assert state(engine).budget == 1000
    assert reserve(engine, "a2", "10.00")
    # January: 14.00 committed before; 14 + 10 = 24 ≤ 25 total.
    assert sync(engine, files, date(2027, 1, 5)) == ["fund 10.00 USD"]
    assert reserve(engine, "a3", "10.00")
    # February: 24 committed, the total caps the allowance at 1.00.
    assert sync(engine, files, date(2027, 2, 5)) == ["fund 1.00 USD"]
    assert state(engine).funded == 2500
    assert check(engine).ok


def test_per_month_only_carries_no_unused_allowance(engine: sa.Engine) -> None:
    files = [campaign("c", per_month="10.00")]
    sync(engine, files, date(2026, 11, 3))
    assert reserve(engine, "a1", "4.00")
    # December's allowance is a fresh 10.00: the 6.00 left in November goes back.
    assert sync(engine, files, date(2026, 12, 1)) == ["fund 4.00 USD"]
    assert state(engine).budget == 1000
    files_lower = [campaign("c", per_month="3.00")]
    assert sync(engine, files_lower, date(2026, 12, 2)) == ["defund 7.00 USD"]


# --- moves ------------------------------------------------------------------------------


def test_reserve_refuses_what_the_budget_cannot_cover(engine: sa.Engine) -> None:
    sync(engine, [campaign("c", "25.00")])
    assert reserve(engine, "a1")
    assert reserve(engine, "a2")
    before = count_transactions(engine)
    assert not reserve(engine, "a3")
    assert count_transactions(engine) == before
    assert reserve(engine, "a3", "5.00")
    assert state(engine).budget == 0
    # Repeating a reservation posts nothing and still answers True.
    assert reserve(engine, "a1")
    assert count_transactions(engine) == before + 1


def test_reserve_without_a_budget_funds_on_demand(engine: sa.Engine) -> None:
    with ledger_transaction(engine) as connection:
        assert ledger.reserve(connection, "a1", "free", usd("3.00"), None, NOV, fund_shortfall=True)
        assert (
            ledger.LedgerBudgets(connection, [FakeCampaign("free", None)]).remaining(  # type: ignore[list-item]
                "free"
            )
            is None
        )
    balances = state(engine, "free")
    assert (balances.funded, balances.reserved, balances.budget) == (300, 300, 0)
    assert check(engine).ok


def test_the_lifecycle_of_a_reward(engine: sa.Engine) -> None:
    sync(engine, [campaign("c", "100.00")])
    for action in ("a1", "a2", "a3", "a4", "a5"):
        assert reserve(engine, action, "9.00")
    with ledger_transaction(engine) as connection:
        assert ledger.issue(connection, "a1", "promo_1")
        assert ledger.redeem(connection, "a1", usd("6.50"), "in_1")
        assert ledger.issue(connection, "a2", "promo_2")
        assert ledger.expire(connection, "a2")
        assert ledger.void(connection, "a3", "no Stripe customer")
        assert ledger.issue(connection, "a4", "promo_4")
        assert ledger.void(connection, "a4", "deactivated")
        assert ledger.issue(connection, "a5", "promo_5")
        assert ledger.redeem(connection, "a5", usd("10.00"), "in_5")  # 1.00 over the estimate
        # Repeats post nothing.
        assert not ledger.issue(connection, "a1", "promo_1")
        assert not ledger.redeem(connection, "a1", usd("6.50"), "in_1")
        assert not ledger.expire(connection, "a2")
        assert not ledger.void(connection, "a3", "again")
    s = state(engine)
    assert (s.reserved, s.outstanding, s.spent) == (0, 0, 1650)
    assert s.budget == 10000 - 1650
    assert check(engine).ok


@pytest.mark.parametrize(
    ("setup", "move", "message"),
    [
        ([], "issue", "no reservation"),
        ([], "redeem", "no reservation"),
        (["reserve"], "redeem", "cannot redeem a reward that is reserved"),
        (["reserve"], "expire", "cannot expire a reward that is reserved"),
        (["reserve", "void"], "issue", "cannot issue a reward that is voided"),
        (["reserve", "issue", "redeem"], "void", "cannot void a reward that is redeemed"),
        (["reserve", "issue", "redeem"], "expire", "cannot expire a reward that is redeemed"),
        (["reserve", "issue", "expire"], "void", "cannot void a reward that is expired"),
        (["reserve", "void"], "reserve", "already released"),
    ],
)
def test_impossible_moves_are_refused(
    engine: sa.Engine, setup: list[str], move: str, message: str
) -> None:
    sync(engine, [campaign("c", "100.00")])

    def do(connection: sa.Connection, kind: str) -> None:
        if kind == "reserve":
            ledger.reserve(connection, "a", "c", usd("9.00"), None, NOV)
        elif kind == "issue":
            ledger.issue(connection, "a", "p")
        elif kind == "redeem":
            ledger.redeem(connection, "a", usd("9.00"), "in")
        elif kind == "expire":
            ledger.expire(connection, "a")
        else:
            ledger.void(connection, "a", "why")

    with ledger_transaction(engine) as connection:
        for kind in setup:
            do(connection, kind)
    before = count_transactions(engine)
    with pytest.raises(RewardError, match=message), ledger_transaction(engine) as connection:
        do(connection, move)
    assert count_transactions(engine) == before
    assert check(engine).ok


def test_a_late_redemption_after_expiry_is_taken_from_budget(engine: sa.Engine) -> None:
    sync(engine, [campaign("c", "100.00")])
    reserve(engine, "a", "9.00")
    with ledger_transaction(engine) as connection:
        ledger.issue(connection, "a", "promo")
        ledger.expire(connection, "a")
        assert ledger.redeem(connection, "a", usd("7.00"), "in")
    s = state(engine)
    assert (s.budget, s.spent, s.outstanding) == (9300, 700, 0)
    assert check(engine).ok


def test_the_database_refuses_a_second_posting_of_one_kind_per_action(
    engine: sa.Engine,
) -> None:
    sync(engine, [campaign("c", "100.00")])
    reserve(engine, "a")

    def double_post() -> None:
        with ledger_transaction(engine) as connection:
            journal.lock(connection)
            journal.append(
                connection,
                "reserve",
                "c",
                postings.reserve("c", usd("1.00")),
                business_date=NOV,
                memo="a bug that skipped the idempotency check",
                action_id="a",
            )

    with pytest.raises(IntegrityError):
        double_post()


def test_a_currency_other_than_the_campaigns_is_refused(engine: sa.Engine) -> None:
    sync(engine, [campaign("c", "100.00")])
    with pytest.raises(RewardError, match="in USD, not EUR"), ledger_transaction(engine) as c:
        ledger.reserve(c, "a", "c", Money.parse("1.00 EUR"), None, NOV)


def test_ledger_budgets_for_the_planner(engine: sa.Engine) -> None:
    files = [campaign("c", "30.00"), campaign("empty", "5.00"), FakeCampaign("free", None)]
    sync(engine, files[:1])
    reserve(engine, "a1", "12.00")
    with engine.connect() as connection:
        budgets = ledger.LedgerBudgets(connection, files)  # type: ignore[arg-type]
    assert budgets.remaining("c") == 1800
    assert budgets.remaining("empty") == 0  # not funded yet
    assert budgets.remaining("free") is None


def test_a_crash_rolls_back_the_whole_transaction(engine: sa.Engine) -> None:
    sync(engine, [campaign("c", "100.00")])
    before = count_transactions(engine)

    def crash() -> None:
        with ledger_transaction(engine) as connection:
            assert ledger.reserve(connection, "a", "c", usd("9.00"), None, NOV)
            raise RuntimeError("killed between the reservation and the commit")

    with pytest.raises(RuntimeError):
        crash()
    assert count_transactions(engine) == before
    assert reserve(engine, "a")
    assert check(engine).ok


# --- append-only, verification ----------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_transactions SET memo = 'edited'",
        "DELETE FROM ledger_transactions",
        "UPDATE ledger_entries SET amount_minor = amount_minor + 1",
        "DELETE FROM ledger_entries",
    ],
)
def test_triggers_reject_updates_and_deletes(engine: sa.Engine, statement: str) -> None:
    sync(engine, [campaign("c", "100.00")])
    reserve(engine, "a")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.exec_driver_sql(statement)
    assert check(engine).ok


def _drop_triggers(connection: sa.Connection) -> None:
    if connection.dialect.name == "sqlite":
        for table in ("ledger_transactions", "ledger_entries"):
            for kind in ("update", "delete"):
                connection.exec_driver_sql(f"DROP TRIGGER {table}_no_{kind}")
    else:
        for table in ("ledger_transactions", "ledger_entries"):
            connection.exec_driver_sql(f"DROP TRIGGER {table}_append_only ON {table}")


def _ids(engine: sa.Engine) -> list[int]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT id FROM ledger_transactions ORDER BY seq")
        return [int(r[0]) for r in rows]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("UPDATE ledger_transactions SET memo = 'nothing to see' WHERE id = {id}", "hash"),
        ("UPDATE ledger_transactions SET action_id = 'other' WHERE id = {id}", "hash"),
        (
            "UPDATE ledger_entries SET amount_minor = amount_minor * 2 WHERE transaction_id = {id}",
            "hash",
        ),
        ("DELETE FROM ledger_entries WHERE transaction_id = {id}", "no entries"),
    ],
)
def test_verify_names_the_first_tampered_transaction(
    engine: sa.Engine, tamper: str, reason: str
) -> None:
    sync(engine, [campaign("c", "100.00")])
    for action in ("a1", "a2", "a3"):
        reserve(engine, action)
    target = _ids(engine)[2]  # the second reservation
    with engine.begin() as connection:
        _drop_triggers(connection)
        connection.exec_driver_sql(tamper.format(id=target))
    result = check(engine)
    assert not result.ok
    assert result.first is not None
    assert result.first.transaction_id == target
    assert reason in result.first.reason


def test_verify_notices_a_removed_transaction(engine: sa.Engine) -> None:
    sync(engine, [campaign("c", "100.00")])
    for action in ("a1", "a2", "a3"):
        reserve(engine, action)
    ids = _ids(engine)
    with engine.begin() as connection:
        _drop_triggers(connection)
        connection.exec_driver_sql(f"DELETE FROM ledger_entries WHERE transaction_id = {ids[1]}")
        connection.exec_driver_sql(f"DELETE FROM ledger_transactions WHERE id = {ids[1]}")
    first = check(engine).first
    assert first is not None
    assert first.transaction_id == ids[2]
    assert "previous hash" in first.reason


def test_verify_catches_an_unbalanced_transaction_even_with_a_valid_hash(
    engine: sa.Engine,
) -> None:
    """A writer that bypassed the store (hash computed honestly over unbalanced entries)."""
    sync(engine, [campaign("c", "100.00")])
    entries = [postings.Entry("campaign:c:budget", -500, "USD")]
    entries.append(postings.Entry("campaign:c:reserved", 400, "USD"))
    with engine.begin() as connection:
        head = connection.exec_driver_sql(
            "SELECT seq, hash FROM ledger_transactions ORDER BY seq DESC"
        ).first()
        assert head is not None
        header = {
            "seq": head[0] + 1,
            "kind": "reserve",
            "campaign_id": "c",
            "action_id": "bad",
            "member_ref": None,
            "provider_ref": None,
            "business_date": NOV,
            "created_at": journal.stamp(None),
            "memo": "unbalanced",
        }
        digest = postings.chain_hash(head[1], header, entries)
        tid = connection.execute(
            sa.insert(tables.ledger_transactions)
            .values(**header, prev_hash=head[1], hash=digest)
            .returning(tables.ledger_transactions.c.id)
        ).scalar_one()
        connection.execute(
            sa.insert(tables.ledger_entries),
            [
                {"transaction_id": tid, "account": e.account, "amount_minor": e.amount_minor}
                | {"currency": e.currency}
                for e in entries
            ],
        )
    first = check(engine).first
    assert first is not None
    assert first.transaction_id == tid
    assert "do not balance: they sum to -1.00 USD" in first.reason


def test_verify_reports_a_campaign_that_spent_more_than_it_was_funded(engine: sa.Engine) -> None:
    sync(engine, [campaign("c", "10.00")])
    reserve(engine, "a", "9.00")
    with ledger_transaction(engine) as connection:
        ledger.issue(connection, "a", "promo")
        # The customer's basket made the discount worth 12.00: a fact the ledger records.
        ledger.redeem(connection, "a", usd("12.00"), "in")
    result = check(engine)
    assert [str(p) for p in result.problems] == [
        f"transaction {_ids(engine)[-1]} (seq 4): campaign c is overspent by 2.00 USD: "
        "reserved + outstanding + spent 12.00 > funded 10.00"
    ]
    # Raising the budget in the file funds the overrun: verify is satisfied again.
    sync(engine, [campaign("c", "12.00")])
    assert check(engine).ok


# --- export -----------------------------------------------------------------------------


def test_export_has_one_row_per_entry_with_the_finance_columns(engine: sa.Engine) -> None:
    sync(engine, [campaign("c", "100.00"), campaign("d", "50.00")])
    reserve(engine, "a1", "9.00")
    reserve(engine, "b1", "5.00", cid="d")
    with ledger_transaction(engine) as connection:
        ledger.issue(connection, "a1", "promo_1", business_date=date(2026, 11, 4))
    with engine.connect() as connection:
        rows = list(ledger.export_entries(connection, NOV, NOV, "c"))
        later = list(ledger.export_entries(connection, date(2026, 11, 4), date(2026, 11, 30)))
    assert [(r["account"], r["amount"], r["kind"]) for r in rows] == [
        ("funding:USD", "-100.00", "fund"),
        ("campaign:c:budget", "100.00", "fund"),
        ("campaign:c:budget", "-9.00", "reserve"),
        ("campaign:c:reserved", "9.00", "reserve"),
    ]
    assert tuple(rows[0]) == ledger.EXPORT_COLUMNS
    for name in (
        "transaction_id",
        "time",
        "campaign_id",
        "member_ref",
        "account",
        "amount",
        "currency",
        "kind",
        "provider_ref",
        "action_id",
        "prev_hash",
        "hash",
    ):
        assert name in ledger.EXPORT_COLUMNS
    reserve_row = rows[2]
    assert reserve_row["member_ref"] == "ref0123456789abc"
    assert reserve_row["action_id"] == "a1"
    assert reserve_row["time"].endswith("+00:00")
    # One chain for the whole ledger: the reservation follows the funding of campaign d.
    assert reserve_row["seq"] == "3"
    assert len(reserve_row["prev_hash"]) == len(reserve_row["hash"]) == 64
    assert reserve_row["prev_hash"] not in (rows[0]["hash"], reserve_row["hash"])
    assert [(r["kind"], r["provider_ref"]) for r in later] == [("issue", "promo_1")] * 2
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ledger.EXPORT_COLUMNS)
    writer.writerows(rows)
    assert buffer.getvalue().count("\n") == 4


def test_balances_list_every_account(engine: sa.Engine) -> None:
    sync(engine, [campaign("c", "100.00")])
    reserve(engine, "a1", "9.00")
    with engine.connect() as connection:
        found = {b.account: b.amount for b in ledger.balances(connection)}
    assert found == {
        "campaign:c:budget": "91.00",
        "campaign:c:reserved": "9.00",
        "campaign:c:outstanding": "0.00",
        "campaign:c:spent": "0.00",
        "funding:USD": "-100.00",
    }


def test_running_balances_match_the_entries_and_an_edit_is_caught(engine: sa.Engine) -> None:
    from store.ledger.tables import ledger_accounts, ledger_entries

    sync(engine, [campaign("c", total="100.00")])
    for n in range(5):
        assert reserve(engine, f"a{n}", "10.00")
    with ledger_transaction(engine) as connection:
        ledger.issue(connection, "a0", "promo_0", business_date=NOV)
        ledger.void(connection, "a1", "test", business_date=NOV)
    with engine.connect() as connection:
        sums = dict(
            connection.execute(
                sa.select(
                    ledger_entries.c.account, sa.func.sum(ledger_entries.c.amount_minor)
                ).group_by(ledger_entries.c.account)
            ).all()
        )
        balances = dict(
            connection.execute(
                sa.select(ledger_accounts.c.account, ledger_accounts.c.balance_minor)
            ).all()
        )
    assert balances == {account: int(sums.get(account, 0)) for account in balances}
    assert set(sums) <= set(balances)
    assert check(engine).ok
    # Someone "tops up" a budget by editing its running balance instead of funding it.
    with engine.begin() as connection:
        connection.execute(
            sa.update(ledger_accounts)
            .where(ledger_accounts.c.account == postings.campaign_account("c", "budget"))
            .values(balance_minor=ledger_accounts.c.balance_minor + 100_000)
        )
    result = check(engine)
    assert not result.ok
    assert "running balance" in str(result.first) and "c:budget" in str(result.first)
