"""The referral-fraud rules (pure): email normalising, each self-referral variant, an
existing customer, an unconverted referral, the velocity limit."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.campaign import DEFAULT_PUBLIC_EMAIL_DOMAINS, FrequencyCap
from domain.referrals import (
    EXISTING_CUSTOMER,
    SELF_REFERRAL,
    UNCONVERTED,
    Conversion,
    Person,
    Referrals,
    gravest,
    normalise_email,
    over_limit,
    refusal,
    verdicts,
)

ADVOCATE = Person(1, "adv", "Jane.Doe@acme.io", "cus_A")
PUBLIC = DEFAULT_PUBLIC_EMAIL_DOMAINS


def person(email: str, customer: str | None = None, pk: int = 2) -> Person:
    return Person(pk, f"m{pk}", email, customer)


def conversion(
    referred: Person | None, first: int | None = 200, since: int | None = 100
) -> Conversion:
    named = referred.member_id if referred is not None else None
    return Conversion(300, "r1", named, referred, first, since)


@pytest.mark.parametrize(
    ("given_", "expected"),
    [
        ("  J.Doe+ref@GoogleMail.com ", "jdoe@gmail.com"),
        ("j.d.o.e@gmail.com", "jdoe@gmail.com"),
        ("Jane.Doe+x+y@Acme.io", "jane.doe@acme.io"),  # dots matter outside Gmail
        ("no-at-sign", "no-at-sign"),
    ],
)
def test_normalise_email(given_: str, expected: str) -> None:
    assert normalise_email(given_) == expected


@given(st.emails())
def test_normalising_is_idempotent(email: str) -> None:
    once = normalise_email(email)
    assert normalise_email(once) == once


@pytest.mark.parametrize(
    ("advocate", "referred", "detail"),
    [
        (ADVOCATE, ADVOCATE, "referred themselves"),
        (person("a@gmail.com"), person(" A+friend@GMail.com ", pk=3), "advocate's email"),
        (person("a.b@gmail.com"), person("ab@googlemail.com", pk=3), "advocate's email"),
        (ADVOCATE, person("other@example.org", "cus_A"), "Stripe customer"),
        (ADVOCATE, person("colleague@ACME.io"), "email domain (acme.io)"),
    ],
)
def test_self_referral_variants_are_refused(
    advocate: Person, referred: Person, detail: str
) -> None:
    verdict = refusal(advocate, conversion(referred), PUBLIC)
    assert verdict is not None
    assert verdict.reason == SELF_REFERRAL
    assert detail in verdict.detail


def test_a_shared_public_domain_is_not_a_self_referral() -> None:
    assert refusal(person("a@gmail.com"), conversion(person("b@gmail.com", pk=3)), PUBLIC) is None


def test_the_policy_list_decides_what_is_public() -> None:
    advocate, referred = person("a@acme.io"), person("b@acme.io", pk=3)
    assert refusal(advocate, conversion(referred), PUBLIC) is not None
    assert refusal(advocate, conversion(referred), {"acme.io"}) is None


def test_a_customer_before_the_referral_is_refused() -> None:
    verdict = refusal(ADVOCATE, conversion(person("b@x.org"), first=50, since=100), PUBLIC)
    assert verdict is not None and verdict.reason == EXISTING_CUSTOMER


@pytest.mark.parametrize(
    ("conv", "detail"),
    [
        (Conversion(300, "r1", None, None, None, None), "names no referred member"),
        (Conversion(300, "r1", "ghost", None, None, None), "no member 'ghost'"),
        (conversion(person("b@x.org"), first=None), "has made no purchase"),
    ],
)
def test_unconverted_referrals_are_refused(conv: Conversion, detail: str) -> None:
    verdict = refusal(ADVOCATE, conv, PUBLIC)
    assert verdict is not None and verdict.reason == UNCONVERTED and detail in verdict.detail


def test_a_distinct_new_customer_earns_the_reward() -> None:
    assert refusal(ADVOCATE, conversion(person("b@x.org", "cus_B")), PUBLIC) is None


def test_one_good_conversion_is_enough_and_the_gravest_refusal_names_the_rest() -> None:
    good = conversion(person("b@x.org"))
    self_ = conversion(ADVOCATE)
    unconverted = conversion(person("c@x.org", pk=4), first=None)
    passed, refused = verdicts(Referrals(ADVOCATE, (unconverted, self_, good)), PUBLIC)
    assert passed == [good]
    assert gravest(refused) == SELF_REFERRAL


def test_velocity_counts_rewards_inside_the_window_only() -> None:
    limit = FrequencyCap(2, 30)
    as_of = date(2026, 3, 31)
    old = date(2026, 3, 1)  # 30 days before: outside a 30-day window that includes tonight
    facts = Referrals(ADVOCATE, (), (old, date(2026, 3, 2)))
    assert over_limit(facts, limit, as_of) is None
    facts = Referrals(ADVOCATE, (), (old, date(2026, 3, 2), date(2026, 3, 30)))
    assert over_limit(facts, limit, as_of) == 2
    assert over_limit(facts, None, as_of) is None
