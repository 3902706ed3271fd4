"""Referral-fraud guards: the pure rules (no I/O). The store gathers the facts
(``store.referral_facts``); the planner asks ``refusal`` and ``over_limit``.

A referral campaign (``Campaign.is_referral``) is fired by an advocate's
``referral_converted`` events. A conversion earns a reward only when it names a distinct
referred member (``referred_member_id`` in the event's properties) who:

* is not the advocate: not the same member, not the same email once normalised
  (``normalise_email``), not the same Stripe customer, not the same email domain unless the
  domain is public (gmail.com and the like: policy.yaml's ``referrals.public_email_domains``)
  → ``self_referral``;
* was not already a customer: no purchase before the referral began (the advocate's
  ``referral_made`` event with the same ``referral_id``; without one, when the referred
  member joined) → ``referral_existing_customer``;
* has made a first purchase by the end of the night → ``referral_unconverted`` (also for a
  conversion that names no member, or one nudgeflow does not know).

An advocate with at least one conversion that passes is rewarded, at most
``referral.max_rewarded.max`` times in any ``per`` days (``referral_velocity``); otherwise
they are excluded for the gravest refusal among their conversions (in ``REFUSALS`` order),
and ``why`` lists every one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from domain.campaign import FrequencyCap

# The planner's exclusion reasons, in the order it applies them.
SELF_REFERRAL = "self_referral"
EXISTING_CUSTOMER = "referral_existing_customer"
UNCONVERTED = "referral_unconverted"
VELOCITY = "referral_velocity"
REFUSALS = (SELF_REFERRAL, EXISTING_CUSTOMER, UNCONVERTED)

# Providers whose addresses ignore dots in the local part.
_DOTLESS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}


def normalise_email(email: str) -> str:
    """The address two spellings of one mailbox share: trimmed, lower-case, without a
    ``+tag``, and for Gmail without dots (``J.Doe+ref@GoogleMail.com`` → ``jdoe@gmail.com``)."""
    text = email.strip().lower()
    local, at, domain = text.rpartition("@")
    if not at:
        return text
    local = local.split("+", 1)[0]
    if domain in _DOTLESS:
        domain = _DOTLESS[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}"


def email_domain(email: str) -> str:
    """The normalised address's domain (empty for an address without ``@``)."""
    normalised = normalise_email(email)
    return normalised.rpartition("@")[2] if "@" in normalised else ""


@dataclass(frozen=True, slots=True)
class Person:
    """Who is on one side of a referral: what tells two members apart."""

    member_pk: int
    member_id: str
    email: str
    stripe_customer: str | None


@dataclass(frozen=True, slots=True)
class Conversion:
    """One ``referral_converted`` event of tonight's window, with what is known of the
    member it names."""

    occurred_at: int  # epoch s
    referral_id: str | None
    named: str | None  # the referred_member_id the event gives (None: it names no one)
    referred: Person | None  # None: no member with that member_id
    first_purchase_at: int | None  # the referred member's first purchase by the night's end
    referred_since: int | None  # when the referral began (referral_made, else joined_at)


@dataclass(frozen=True, slots=True)
class Referrals:
    """The referral facts of one advocate for one referral campaign tonight."""

    advocate: Person
    conversions: tuple[Conversion, ...]  # oldest first
    rewarded_on: tuple[date, ...] = ()  # the campaign's rewards for them inside the limit


@dataclass(frozen=True, slots=True)
class Verdict:
    """A conversion that earns no reward: the reason and, in words, why."""

    conversion: Conversion
    reason: str
    detail: str


def refusal(
    advocate: Person, conversion: Conversion, public_domains: Collection[str]
) -> Verdict | None:
    """Why ``conversion`` earns ``advocate`` no reward (``None``: it earns one)."""
    referred = conversion.referred
    if referred is None:
        detail = (
            "the conversion names no referred member"
            if conversion.named is None
            else f"no member {conversion.named!r}"
        )
        return Verdict(conversion, UNCONVERTED, detail)
    same = _same_person(advocate, referred, public_domains)
    if same is not None:
        return Verdict(conversion, SELF_REFERRAL, same)
    first, since = conversion.first_purchase_at, conversion.referred_since
    if first is not None and since is not None and first < since:
        return Verdict(
            conversion,
            EXISTING_CUSTOMER,
            f"{referred.member_id} was a customer before the referral",
        )
    if first is None:
        return Verdict(conversion, UNCONVERTED, f"{referred.member_id} has made no purchase")
    return None


def _same_person(advocate: Person, referred: Person, public_domains: Collection[str]) -> str | None:
    if advocate.member_pk == referred.member_pk:
        return "the advocate referred themselves"
    mine, theirs = normalise_email(advocate.email), normalise_email(referred.email)
    if mine and mine == theirs:
        return f"{referred.member_id} has the advocate's email ({mine})"
    customer = advocate.stripe_customer
    if customer and customer == referred.stripe_customer:
        return f"{referred.member_id} is the advocate's Stripe customer ({customer})"
    domain = email_domain(advocate.email)
    if domain and domain == email_domain(referred.email) and domain not in public_domains:
        return f"{referred.member_id} shares the advocate's email domain ({domain})"
    return None


def verdicts(
    facts: Referrals, public_domains: Collection[str]
) -> tuple[list[Conversion], list[Verdict]]:
    """(the conversions that earn a reward, the refusals of the others)."""
    passed: list[Conversion] = []
    refused: list[Verdict] = []
    for conversion in facts.conversions:
        verdict = refusal(facts.advocate, conversion, public_domains)
        if verdict is None:
            passed.append(conversion)
        else:
            refused.append(verdict)
    return passed, refused


def gravest(refused: Sequence[Verdict]) -> str:
    """The reason an advocate whose conversions were all refused is excluded for."""
    reasons = {v.reason for v in refused}
    return next((r for r in REFUSALS if r in reasons), UNCONVERTED)


def rewarded_in_window(rewarded_on: Sequence[date], as_of: date, per_days: int) -> int:
    """How many of the rewards count against a limit of ``per_days`` on ``as_of`` (tonight
    and the ``per_days - 1`` days before)."""
    since = as_of - timedelta(days=per_days - 1)
    return sum(1 for d in rewarded_on if since <= d <= as_of)


def over_limit(facts: Referrals, limit: FrequencyCap | None, as_of: date) -> int | None:
    """The rewards already counted in the limit's window when one more would break it
    (``None``: room for one more, or no limit)."""
    if limit is None:
        return None
    count = rewarded_in_window(facts.rewarded_on, as_of, limit.per_days)
    return count if count >= limit.max else None
