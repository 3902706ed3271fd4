"""The ledger's posting rules: every kind moves money between the right accounts and
balances per currency; the hash chain's canonical form is stable."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from domain import postings
from domain.postings import Entry
from nudgeflow.errors import RewardError
from nudgeflow.money import Money

USD = "USD"


def _net(entries: list[Entry]) -> dict[str, int]:
    return {e.account: e.amount_minor for e in entries}


def test_fund_and_defund_move_between_funding_and_budget() -> None:
    assert _net(postings.fund("c", Money(500, USD))) == {
        "funding:USD": -500,
        "campaign:c:budget": 500,
    }
    assert _net(postings.defund("c", Money(200, USD))) == {
        "campaign:c:budget": -200,
        "funding:USD": 200,
    }


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (postings.reserve("c", Money(900, USD)), {"budget": -900, "reserved": 900}),
        (postings.issue("c", Money(900, USD)), {"reserved": -900, "outstanding": 900}),
        (postings.expire("c", Money(900, USD)), {"outstanding": -900, "budget": 900}),
        (postings.void("c", Money(900, USD), issued=False), {"reserved": -900, "budget": 900}),
        (postings.void("c", Money(900, USD), issued=True), {"outstanding": -900, "budget": 900}),
        (postings.late_redeem("c", Money(400, USD)), {"budget": -400, "spent": 400}),
    ],
)
def test_each_move(entries: list[Entry], expected: dict[str, int]) -> None:
    assert _net(entries) == {f"campaign:c:{kind}": amount for kind, amount in expected.items()}
    postings.check_balanced(entries)


def test_redeem_below_estimate_returns_the_difference_to_budget() -> None:
    entries = postings.redeem("c", Money(900, USD), Money(650, USD))
    assert _net(entries) == {
        "campaign:c:outstanding": -900,
        "campaign:c:spent": 650,
        "campaign:c:budget": 250,
    }
    postings.check_balanced(entries)


def test_redeem_above_estimate_takes_the_overrun_from_budget() -> None:
    entries = postings.redeem("c", Money(900, USD), Money(1000, USD))
    assert _net(entries)["campaign:c:budget"] == -100
    postings.check_balanced(entries)


def test_redeem_at_the_estimate_posts_no_budget_entry() -> None:
    entries = postings.redeem("c", Money(900, USD), Money(900, USD))
    assert "campaign:c:budget" not in _net(entries)


def test_refusals() -> None:
    with pytest.raises(RewardError, match="negative"):
        postings.reserve("c", Money(-1, USD))
    with pytest.raises(RewardError, match="EUR"):
        postings.redeem("c", Money(900, USD), Money(900, "EUR"))
    with pytest.raises(RewardError, match="do not balance"):
        postings.check_balanced([Entry("a", 5, USD), Entry("b", -4, USD)])
    with pytest.raises(RewardError, match="at least one"):
        postings.check_balanced([])
    with pytest.raises(ValueError, match="account kind"):
        postings.campaign_account("c", "petty-cash")


def test_balance_is_per_currency() -> None:
    mixed = [Entry("a", 5, USD), Entry("b", -5, "EUR")]
    assert postings.imbalance(mixed) == {USD: 5, "EUR": -5}
    with pytest.raises(RewardError, match="EUR -5, USD \\+5"):
        postings.check_balanced(mixed)


def test_member_ref_is_a_keyed_pseudonym() -> None:
    ref = postings.member_ref("m-1", "key")
    assert len(ref) == 16
    assert ref == postings.member_ref("m-1", b"key")
    assert ref != postings.member_ref("m-1", "other key")
    assert ref != postings.member_ref("m-2", "key")
    assert "m-1" not in ref


def test_chain_hash_covers_every_field_and_ignores_entry_order() -> None:
    header = {
        "seq": 1,
        "kind": "fund",
        "campaign_id": "c",
        "business_date": date(2026, 11, 1),
        "created_at": datetime(2026, 11, 1, 2, 0),
        "memo": "m",
    }
    entries = postings.fund("c", Money(100, USD))
    digest = postings.chain_hash(postings.GENESIS_HASH, header, entries)
    assert digest == postings.chain_hash(postings.GENESIS_HASH, header, entries[::-1])
    assert digest != postings.chain_hash("1" * 64, header, entries)
    assert digest != postings.chain_hash(postings.GENESIS_HASH, {**header, "memo": "n"}, entries)
    assert digest != postings.chain_hash(
        postings.GENESIS_HASH, header, postings.fund("c", Money(101, USD))
    )
    assert '"created_at":"2026-11-01T02:00:00.000000"' in postings.canonical_json(header, entries)
