"""The reward interface dispatch issues through: ``RewardIssuer``, the values it speaks in
(``RewardMember``, ``IssuedReward``), ``TransientRewardError``, and the deterministic values
every provider agrees on (codes, expiries, coupon ids, face values).

``issue(action_id, campaign, reward, member)`` gives the member their reward; calling it
again for the same action returns the same reward instead of a second one. ``find`` looks up
a reward an earlier attempt created (after a crash, or after Stripe forgot the idempotency
key) and ``deactivate`` withdraws one when its action fails. ``issue(...,
first_attempt=True)`` is the caller's word that no earlier attempt can have issued anything
for the action (dispatch knows it from the action's state): the issuer then creates without
looking first, one request to the provider instead of two; the idempotency key still guards
the create. ``RewardError`` is permanent
(no Stripe customer, a request the provider refuses): the caller fails the action and voids
its reservation. ``TransientRewardError`` means the provider did not answer in time; the
action can be retried on a later run.

Implementations: ``providers.local``, ``providers.stripe_issuer``, ``providers.gifts``,
``providers.invites``, and ``providers.recording`` which routes by kind and records.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol

from domain.campaign import Campaign, Reward
from nudgeflow.errors import RewardError
from nudgeflow.money import Money

Clock = Callable[[], datetime]


class TransientRewardError(RewardError):
    """The provider did not answer (timeouts, 5xx, rate limits) after every retry: nothing
    is known to be wrong with the reward, so a later run may try again."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RewardMember:
    """What issuers need to know about the member being rewarded."""

    member_pk: int
    member_id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    stripe_customer_id: str | None = None
    # Free-form member attributes (address_line1, city, …) plus the country column.
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IssuedReward:
    """A reward as the member sees it (``code``, ``value_text``, ``expires_at``, ``link`` go
    into the email) and as the provider knows it (``provider``, ``provider_ref``)."""

    provider: str  # local | stripe | gift | invite
    provider_ref: str  # promotion code id, balance transaction id, gift id, …
    code: str | None
    value_text: str
    expires_at: datetime | None
    link: str | None
    action_id: str = ""
    kind: str = ""
    customer: str | None = None  # the Stripe customer, for Stripe rewards
    amount: Money | None = None  # face value, when the reward has one

    def as_template_context(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "value": self.value_text,
            "expires_at": self.expires_at,
            "link": self.link,
        }


class RewardIssuer(Protocol):
    def issue(
        self,
        action_id: str,
        campaign: Campaign,
        reward: Reward,
        member: RewardMember,
        *,
        first_attempt: bool = False,
    ) -> IssuedReward:
        """Give the reward; the same ``action_id`` always yields the same one. With
        ``first_attempt`` the issuer may skip looking for what an earlier attempt made."""
        ...

    def find(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward | None:
        """The reward an earlier attempt for ``action_id`` created, if any."""
        ...

    def deactivate(self, issued: IssuedReward) -> None:
        """Withdraw the reward (its action failed); doing it twice is harmless."""
        ...


class RewardRow(Protocol):
    """A row of the ``rewards`` table as the store returns it (a SQLAlchemy ``Row``)."""

    @property
    def _mapping(self) -> Mapping[Any, Any]: ...


def issued_from_row(row: RewardRow) -> IssuedReward:
    """The reward a ``rewards`` row records, as issuers return it."""
    m = row._mapping
    # A percent discount has no face value; its row keeps the cost estimate for its currency.
    has_amount = m["amount_minor"] is not None and m["percent_off"] is None
    amount = Money(m["amount_minor"], m["currency"]) if has_amount else None
    expires = datetime.fromtimestamp(m["expires_at"], UTC) if m["expires_at"] else None
    return IssuedReward(
        provider=m["provider"],
        provider_ref=m["provider_ref"],
        code=m["code"],
        value_text=m["value_text"],
        expires_at=expires,
        link=m["link"],
        action_id=m["action_id"],
        kind=m["kind"],
        customer=m["customer"],
        amount=amount,
    )


# -- deterministic values -----------------------------------------------------------------


def reward_code(action_id: str) -> str:
    """The member-facing code for an action: derived from its id alone, so every attempt
    (and every provider) agrees on it, and Stripe can be searched for it by ``?code=``."""
    digest = hashlib.sha256(f"nudgeflow-code:{action_id}".encode()).digest()
    # Base32 without padding: letters and digits only, which Stripe codes accept and which
    # read well aloud. 60 bits: collisions are out of reach for any realistic volume.
    text = base64.b32encode(digest).decode()[:12]
    return f"NF-{text[:4]}-{text[4:8]}-{text[8:]}"


def expiry_for(reward: Reward, now: datetime) -> datetime | None:
    """When a reward issued at ``now`` expires: midnight UTC ending day ``now + expires_in``.

    Rounding to a whole day keeps the request parameters identical when an action is retried
    later the same day, so the retry matches its idempotency key instead of conflicting.
    """
    if reward.expires_in_days is None:
        return None
    day = now.astimezone(UTC).date() + timedelta(days=reward.expires_in_days + 1)
    return datetime.combine(day, time(0), tzinfo=UTC)


def coupon_id(campaign: Campaign, reward: Reward) -> str | None:
    """The Stripe coupon a discount's promotion codes hang off: one per campaign and reward
    shape, found again by this id. A changed shape (15% → 20%) gets a new coupon, so codes
    already sent keep the value their email promised."""
    if reward.kind != "discount":
        return None
    shape = f"{reward.percent_off!r}|{reward.amount_off!r}"
    digest = hashlib.sha256(shape.encode()).hexdigest()[:10]
    return f"nf-{campaign.id}-{digest}"


def face_value(reward: Reward) -> Money | None:
    """The reward's own amount: a credit's value, a fixed discount, or its cost."""
    if reward.kind == "credit":
        return reward.amount
    if reward.kind == "discount":
        return reward.amount_off
    return reward.cost
