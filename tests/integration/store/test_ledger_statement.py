"""Closing a month on SQLite and PostgreSQL: a ledger with funding, reservations, issues,
redemptions (under, over and after expiry), releases before and after issue and an expiry
across November and December. Each month's statement ties out, December opens where
November closed, spent money is split by reward kind, balances at a past date are that
month's closing, and an entry the posting rules never make is reported with its figures."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from domain.campaign import Budget
from domain.postings import Entry, campaign_account
from nudgeflow.money import Money
from store import ledger
from store.ledger import journal, ledger_transaction
from store.schema import actions, members
from tests.integration.store.test_ledger import FakeCampaign, campaign

STAMP = datetime(2026, 11, 1, tzinfo=UTC).replace(tzinfo=None)
KINDS = {"a1": "discount", "a2": "credit", "a3": "gift", "a4": "discount", "a5": "gift"}
KINDS |= {"a6": "credit"}


def usd(text: str) -> Money:
    return Money.parse(f"{text} USD")


def plan_actions(engine: sa.Engine) -> None:
    """The nightly actions the rewards belong to: their reward says its kind."""
    with engine.begin() as connection:
        member = connection.execute(
            sa.insert(members)
            .values(
                member_id="statement-member",
                email="statement-member@example.com",
                row_hash="0" * 32,
                created_at=STAMP,
                updated_at=STAMP,
            )
            .returning(members.c.id)
        ).scalar_one()
        connection.execute(
            sa.insert(actions),
            [
                {
                    "action_id": action,
                    "campaign_id": "c",
                    "member_pk": member,
                    "occurrence": action,
                    "as_of": date(2026, 11, 3),
                    "state": "sent",
                    "holdout": False,
                    "reward": {"kind": kind, "cost": "10.00 USD"},
                    "cost_minor": 1000,
                    "currency": "USD",
                    "template": "t",
                    "response_types": [],
                    "response_from": 0,
                    "response_until": 0,
                    "created_at": STAMP,
                    "updated_at": STAMP,
                }
                for action, kind in KINDS.items()
            ],
        )


def two_months(engine: sa.Engine) -> None:
    """November: fund 100.00; reserve a1–a4 (10.00 each); issue a1–a3; release a4 before
    issue; a1 redeemed at 7.50, a3 at 12.00. December: fund 50.00 more, and campaign d
    20.00 EUR; a5 reserved, issued and released after issue; a2 expires, then is reported
    redeemed at 5.00; a6 reserved and left so."""
    plan_actions(engine)
    zone = ZoneInfo("UTC")
    euro = FakeCampaign("d", Budget(Money.parse("20.00 EUR"), None))
    with ledger_transaction(engine) as c:
        ledger.sync_funding(c, [campaign("c", "100.00")], date(2026, 11, 3), zone)  # type: ignore[list-item]
        for action in ("a1", "a2", "a3", "a4"):
            assert ledger.reserve(c, action, "c", usd("10.00"), None, date(2026, 11, 3))
        for action in ("a1", "a2", "a3"):
            ledger.issue(c, action, f"ref-{action}", business_date=date(2026, 11, 4))
        ledger.void(c, "a4", "no customer", business_date=date(2026, 11, 5))
        ledger.redeem(c, "a1", usd("7.50"), "in_1", business_date=date(2026, 11, 10))
        ledger.redeem(c, "a3", usd("12.00"), "gift 1", business_date=date(2026, 11, 30))
    with ledger_transaction(engine) as c:
        files = [campaign("c", "150.00"), euro]
        ledger.sync_funding(c, files, date(2026, 12, 1), zone)  # type: ignore[arg-type]
        assert ledger.reserve(c, "a5", "c", usd("10.00"), None, date(2026, 12, 2))
        ledger.issue(c, "a5", "ref-a5", business_date=date(2026, 12, 2))
        ledger.void(c, "a5", "deactivated", business_date=date(2026, 12, 3))
        ledger.expire(c, "a2", business_date=date(2026, 12, 15))
        ledger.redeem(c, "a2", usd("5.00"), "in_2", business_date=date(2026, 12, 20))
        assert ledger.reserve(c, "a6", "c", usd("10.00"), None, date(2026, 12, 31))


def close(engine: sa.Engine, year: int, month: int) -> ledger.Statement:
    with engine.connect() as connection:
        return ledger.statement(connection, year, month)


def line(result: ledger.Statement, campaign_id: str) -> ledger.StatementLine:
    (found,) = (x for x in result.lines if x.campaign_id == campaign_id)
    return found


def test_each_month_ties_out_and_december_opens_where_november_closed(
    engine: sa.Engine,
) -> None:
    two_months(engine)
    november, december = close(engine, 2026, 11), close(engine, 2026, 12)
    assert november.mismatches() == [] and december.mismatches() == []
    assert november.ties_out and december.ties_out
    nov = line(november, "c")
    assert [x.campaign_id for x in november.lines] == ["c"]  # d has no entry yet
    assert (nov.budget_remaining_opening, nov.funded, nov.defunded, nov.reserved) == (
        0,
        10000,
        0,
        4000,
    )
    assert (nov.issued, nov.released_reserved, nov.released_outstanding, nov.expired) == (
        3000,
        1000,
        0,
        0,
    )
    # a1 needed 2.50 less than reserved, a3 2.00 more: +0.50 back to the budget.
    assert (nov.redeemed_at_estimate, nov.redemption_differences) == (2000, 50)
    assert nov.spent_by_reward_kind == {"discount": 750, "credit": 0, "gift": 1200, "vip_invite": 0}
    assert (nov.budget_remaining_closing, nov.reserved_closing, nov.outstanding_closing) == (
        7050,
        0,
        1000,
    )
    assert (nov.spent_in_month, nov.spent_to_date) == (1950, 1950)

    dec = line(december, "c")
    assert (dec.budget_remaining_opening, dec.reserved_opening, dec.outstanding_opening) == (
        nov.budget_remaining_closing,
        nov.reserved_closing,
        nov.outstanding_closing,
    )
    assert dec.spent_before_month == nov.spent_to_date
    assert (dec.funded, dec.reserved, dec.issued, dec.released_outstanding, dec.expired) == (
        5000,
        2000,
        1000,
        1000,
        1000,
    )
    # a2 redeemed after it expired: the whole 5.00 comes from the budget.
    assert dec.redemption_differences == -500
    assert dec.spent_by_reward_kind["credit"] == 500
    assert (dec.budget_remaining_closing, dec.reserved_closing, dec.outstanding_closing) == (
        11550,
        1000,
        0,
    )
    assert dec.spent_to_date == 2450
    euro = line(december, "d")
    assert (euro.currency, euro.funded, euro.budget_remaining_closing) == ("EUR", 2000, 2000)
    # Every transaction and entry of each month is in its statement.
    with engine.connect() as connection:
        dated = connection.exec_driver_sql(
            "SELECT t.business_date < '2026-12-01', count(DISTINCT t.id), count(*) "
            "FROM ledger_transactions t JOIN ledger_entries e ON e.transaction_id = t.id "
            "GROUP BY t.business_date < '2026-12-01'"
        ).all()
    counts = {bool(early): (int(txns), int(entries)) for early, txns, entries in dated}
    assert (november.transactions, november.entries) == counts[True]
    assert (december.transactions, december.entries) == counts[False]


def test_the_closing_is_what_balances_at_the_months_end_show(engine: sa.Engine) -> None:
    two_months(engine)
    november = line(close(engine, 2026, 11), "c")
    with engine.connect() as connection:
        then = ledger.campaign_balances(connection, as_of=date(2026, 11, 30))
        now = ledger.campaign_balances(connection)
        funding = {
            b.account: b.amount_minor
            for b in ledger.balances(connection, date(2026, 11, 30))
            if b.kind == "funding"
        }
    assert list(then) == ["c"]  # d was first funded in December
    c = then["c"]
    assert (c.budget, c.reserved, c.outstanding, c.spent, c.funded) == (
        november.budget_remaining_closing,
        november.reserved_closing,
        november.outstanding_closing,
        november.spent_to_date,
        10000,
    )
    assert funding == {"funding:USD": -10000, "funding:EUR": 0}
    assert (now["c"].budget, now["c"].funded) == (11550, 15000)


def test_a_month_without_entries_carries_the_balances(engine: sa.Engine) -> None:
    two_months(engine)
    january = close(engine, 2027, 1)
    assert january.ties_out and (january.transactions, january.entries) == (0, 0)
    c = line(january, "c")
    assert c.budget_remaining_opening == c.budget_remaining_closing == 11550
    assert c.spent_in_month == 0 and c.spent_to_date == 2450
    assert close(engine, 2026, 10).lines == ()


def test_an_entry_the_posting_rules_never_make_is_reported_with_its_figures(
    engine: sa.Engine,
) -> None:
    two_months(engine)
    with ledger_transaction(engine) as c:
        journal.lock(c)
        # Balanced, so append takes it, but an "issue" never touches budget or spent.
        journal.append(
            c,
            "issue",
            "c",
            [
                Entry(campaign_account("c", "budget"), -300, "USD"),
                Entry(campaign_account("c", "spent"), 300, "USD"),
            ],
            business_date=date(2026, 12, 9),
            memo="an odd posting",
        )
    assert close(engine, 2026, 11).ties_out
    problems = close(engine, 2026, 12).mismatches()
    assert problems == [
        "campaign c (USD) budget_remaining: opening 70.50 + the month's movements 45.00 = "
        "115.50, but its entries to the month's end sum to 112.50",
        "campaign c (USD) spent: opening 19.50 + the month's movements 5.00 = 24.50, but its "
        "entries to the month's end sum to 27.50",
    ]


@pytest.mark.parametrize(("year", "month", "last"), [(2026, 2, 28), (2028, 2, 29), (2026, 12, 31)])
def test_month_bounds(year: int, month: int, last: int) -> None:
    from store.ledger.statement import month_bounds

    assert month_bounds(year, month) == (date(year, month, 1), date(year, month, last))
