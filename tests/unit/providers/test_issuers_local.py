"""The offline issuer: deterministic codes and expiries, no I/O."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from domain.campaign import Reward
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from providers.issuers import (
    LocalIssuer,
    RewardMember,
    coupon_id,
    expiry_for,
    reward_code,
)
from tests.campaigns import make_campaign

NOW = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)
CAMPAIGN = make_campaign("loyal", name="Loyal")
PERCENT = Reward("discount", Money(900, "USD"), percent_off=15, expires_in_days=30)
CREDIT = Reward("credit", Money(2500, "USD"), amount=Money(2500, "USD"))
MEMBER = RewardMember(member_pk=1, member_id="m1")


def test_the_same_action_always_gets_the_same_code() -> None:
    first = LocalIssuer(clock=lambda: NOW).issue("a" * 32, CAMPAIGN, PERCENT, MEMBER)
    again = LocalIssuer(clock=lambda: NOW).issue("a" * 32, CAMPAIGN, PERCENT, MEMBER)
    other = LocalIssuer(clock=lambda: NOW).issue("b" * 32, CAMPAIGN, PERCENT, MEMBER)
    assert first == again
    assert first.code != other.code
    assert first.provider == "local"
    assert first.value_text == "15% off"
    assert first.expires_at == datetime(2026, 4, 10, tzinfo=UTC)  # end of day now + 30


def test_codes_are_stripe_safe_and_readable() -> None:
    codes = {reward_code(f"{n:032x}") for n in range(2000)}
    assert len(codes) == 2000
    assert all(re.fullmatch(r"NF-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}", c) for c in codes)


def test_expiry_is_stable_within_a_day() -> None:
    morning = expiry_for(PERCENT, datetime(2026, 3, 10, 0, 1, tzinfo=UTC))
    assert morning == expiry_for(PERCENT, NOW)
    assert expiry_for(CREDIT, NOW) is None


def test_credit_and_value_texts() -> None:
    issued = LocalIssuer(clock=lambda: NOW).issue("c" * 32, CAMPAIGN, CREDIT, MEMBER)
    assert issued.value_text == "25.00 USD credit"
    assert issued.amount == Money(2500, "USD")
    fixed = Reward("discount", Money(1000, "EUR"), amount_off=Money(1000, "EUR"))
    assert fixed.value_text() == "10.00 EUR off"


def test_coupon_ids_follow_the_reward_shape() -> None:
    twenty = Reward("discount", Money(900, "USD"), percent_off=20, expires_in_days=30)
    assert coupon_id(CAMPAIGN, PERCENT) == coupon_id(CAMPAIGN, PERCENT)
    assert coupon_id(CAMPAIGN, PERCENT) != coupon_id(CAMPAIGN, twenty)
    assert str(coupon_id(CAMPAIGN, PERCENT)).startswith("nf-loyal-")
    assert coupon_id(CAMPAIGN, CREDIT) is None


def test_local_issuer_refuses_other_kinds() -> None:
    gift = Reward("gift", Money(500, "USD"), item="mug")
    with pytest.raises(RewardError, match="cannot issue a gift"):
        LocalIssuer().issue("d" * 32, CAMPAIGN, gift, MEMBER)
