"""The ledger's posting rules: which entries each kind of transaction posts (pure).

Sign convention: an entry's amount is signed and an account's balance is the sum of its
entries. The campaign accounts hold money, so their balances are positive; the
organisation's ``funding:<currency>`` account goes negative by what it has handed out.
Every transaction's entries sum to zero per currency (``check_balanced``).

::

    fund      funding → budget          (a campaign file raised the budget)
    defund    budget → funding          (a campaign file lowered it, or the month rolled over)
    reserve   budget → reserved         (estimate held for one action's reward)
    issue     reserved → outstanding    (the reward exists at the provider)
    redeem    outstanding → spent       (at the actual cost; the difference to the estimate
                                         goes back to budget, or an overrun comes from it)
    expire    outstanding → budget      (not redeemed before it expired)
    void      reserved|outstanding → budget   (the action failed or was cancelled)

The hash chain is here too: ``chain_hash`` is what both the writer and ``verify`` compute, so
they cannot disagree about the canonical form (keyed or not: ``domain.ledger_keys``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from nudgeflow.errors import RewardError
from nudgeflow.money import Money

CAMPAIGN_ACCOUNT_KINDS = ("budget", "reserved", "outstanding", "spent")
TRANSACTION_KINDS = ("fund", "defund", "reserve", "issue", "redeem", "expire", "void")
GENESIS_HASH = "0" * 64  # the "previous hash" of the very first transaction


@dataclass(frozen=True)
class Entry:
    account: str
    amount_minor: int  # signed
    currency: str


def campaign_account(campaign_id: str, kind: str) -> str:
    if kind not in CAMPAIGN_ACCOUNT_KINDS:
        raise ValueError(f"unknown campaign account kind {kind!r}")
    return f"campaign:{campaign_id}:{kind}"


def funding_account(currency: str) -> str:
    return f"funding:{currency}"


def _move(source: str, target: str, money: Money) -> list[Entry]:
    if money.amount_minor < 0:
        raise RewardError(f"cannot post a negative amount ({money})")
    return [
        Entry(source, -money.amount_minor, money.currency),
        Entry(target, money.amount_minor, money.currency),
    ]


def fund(campaign_id: str, amount: Money) -> list[Entry]:
    return _move(funding_account(amount.currency), campaign_account(campaign_id, "budget"), amount)


def defund(campaign_id: str, amount: Money) -> list[Entry]:
    return _move(campaign_account(campaign_id, "budget"), funding_account(amount.currency), amount)


def reserve(campaign_id: str, estimate: Money) -> list[Entry]:
    return _move(
        campaign_account(campaign_id, "budget"), campaign_account(campaign_id, "reserved"), estimate
    )


def issue(campaign_id: str, estimate: Money) -> list[Entry]:
    return _move(
        campaign_account(campaign_id, "reserved"),
        campaign_account(campaign_id, "outstanding"),
        estimate,
    )


def redeem(campaign_id: str, estimate: Money, actual: Money) -> list[Entry]:
    """Outstanding → spent at the actual cost. What the estimate held beyond the actual cost
    returns to the budget; an actual cost above the estimate takes the overrun from the
    budget (the redemption happened: the ledger records the fact, ``verify`` reports a
    campaign whose commitments then exceed its funding)."""
    if actual.currency != estimate.currency:
        raise RewardError(
            f"redeemed in {actual.currency}, but the reservation was in {estimate.currency}"
        )
    if actual.amount_minor < 0:
        raise RewardError(f"cannot redeem a negative amount ({actual})")
    currency = actual.currency
    entries = [
        Entry(campaign_account(campaign_id, "outstanding"), -estimate.amount_minor, currency),
        Entry(campaign_account(campaign_id, "spent"), actual.amount_minor, currency),
    ]
    difference = estimate.amount_minor - actual.amount_minor
    if difference:
        entries.append(Entry(campaign_account(campaign_id, "budget"), difference, currency))
    return entries


def late_redeem(campaign_id: str, actual: Money) -> list[Entry]:
    """A redemption that arrives after the reward was already expired: the estimate went back
    to the budget at expiry, so the actual cost now comes from the budget."""
    return _move(
        campaign_account(campaign_id, "budget"), campaign_account(campaign_id, "spent"), actual
    )


def expire(campaign_id: str, estimate: Money) -> list[Entry]:
    return _move(
        campaign_account(campaign_id, "outstanding"),
        campaign_account(campaign_id, "budget"),
        estimate,
    )


def void(campaign_id: str, estimate: Money, *, issued: bool) -> list[Entry]:
    """Release a reservation (``issued=False``) or an issued reward (``issued=True``)."""
    source = "outstanding" if issued else "reserved"
    return _move(
        campaign_account(campaign_id, source), campaign_account(campaign_id, "budget"), estimate
    )


def imbalance(entries: Iterable[Entry]) -> dict[str, int]:
    """Per currency, what the entries sum to when they do not sum to zero."""
    totals: dict[str, int] = {}
    for entry in entries:
        totals[entry.currency] = totals.get(entry.currency, 0) + entry.amount_minor
    return {currency: total for currency, total in totals.items() if total}


def check_balanced(entries: Sequence[Entry]) -> None:
    """Refuse a transaction whose entries do not sum to zero per currency, or that has none."""
    if not entries:
        raise RewardError("a ledger transaction needs at least one entry")
    off = imbalance(entries)
    if off:
        detail = ", ".join(f"{currency} {total:+d}" for currency, total in sorted(off.items()))
        raise RewardError(f"ledger entries do not balance ({detail} minor units)")


def member_ref(member_id: str, signing_key: str | bytes) -> str:
    """The pseudonymous member id the ledger stores: HMAC-SHA256 of the member id under the
    signing key, hex, first 16 characters. Finance can match a member it is told about; a
    leaked export names nobody."""
    key = signing_key.encode() if isinstance(signing_key, str) else signing_key
    return hmac.new(key, member_id.encode(), hashlib.sha256).hexdigest()[:16]


def canonical_json(header: Mapping[str, object], entries: Iterable[Entry]) -> str:
    """One fixed text for a transaction and its entries: sorted keys, no spaces, dates in ISO
    8601, entries sorted (so the database's row order does not matter)."""

    def plain(value: object) -> object:
        if isinstance(value, datetime):
            return value.isoformat(timespec="microseconds")
        if isinstance(value, date):
            return value.isoformat()
        return value

    document = {
        **{key: plain(value) for key, value in header.items()},
        "entries": sorted([e.account, e.amount_minor, e.currency] for e in entries),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(
    prev_hash: str,
    header: Mapping[str, object],
    entries: Iterable[Entry],
    key: bytes | None = None,
) -> str:
    """SHA-256 over the previous transaction's hash and this transaction's canonical JSON;
    with a ``key`` (``domain.ledger_keys``), HMAC-SHA256 under it over the same text."""
    text = (prev_hash + canonical_json(header, entries)).encode()
    if key is not None:
        return hmac.new(key, text, hashlib.sha256).hexdigest()
    return hashlib.sha256(text).hexdigest()
