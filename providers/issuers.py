"""Reward issuers: one small interface, a provider per reward kind.

``RewardIssuer.issue(action_id, campaign, reward, member)`` gives the member their reward and
returns an ``IssuedReward``; calling it again for the same action returns the same reward
instead of a second one. ``find`` looks up a reward an earlier attempt created (after a crash,
or after Stripe forgot the idempotency key) and ``deactivate`` withdraws one when its action
fails.

Providers: discounts and credits go to ``LocalIssuer`` (offline, the default) or
``providers.stripe_issuer.StripeIssuer``; gifts to ``providers.gifts.GiftIssuer`` (fulfilment
requests); VIP invites to ``providers.invites.InviteIssuer`` (signed links).
``RecordingIssuer`` routes by kind and records every reward in the ``rewards`` table, which
is what the redemption sync, expiry and ``ledger reconcile`` read. ``build_issuer`` wires it
from settings.

Errors: ``RewardError`` is permanent (no Stripe customer, a request Stripe refuses): the
caller fails the action and voids its reservation. ``TransientRewardError`` means the
provider did not answer in time; the action can be retried on a later run.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from domain.campaign import Campaign, Reward
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from store import reward_tables
from store.engine import write_transaction

if TYPE_CHECKING:
    from settings import AppSettings

Clock = Callable[[], datetime]
MONEY_KINDS = ("discount", "credit")


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
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward:
        """Give the reward; the same ``action_id`` always yields the same one."""
        ...

    def find(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward | None:
        """The reward an earlier attempt for ``action_id`` created, if any."""
        ...

    def deactivate(self, issued: IssuedReward) -> None:
        """Withdraw the reward (its action failed); doing it twice is harmless."""
        ...


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


# -- the offline provider -----------------------------------------------------------------


class LocalIssuer:
    """Discounts and credits without Stripe: deterministic codes, nothing leaves the process.

    The codes are what Stripe would carry, so a demo's emails look like production's.
    ``RecordingIssuer`` stores them; there is no remote copy to ``find`` or withdraw.
    """

    provider = "local"

    def __init__(self, clock: Clock = utc_now) -> None:
        self._clock = clock

    def issue(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward:
        if reward.kind not in MONEY_KINDS:
            raise RewardError(f"the local issuer cannot issue a {reward.kind} reward")
        code = reward_code(action_id)
        return IssuedReward(
            provider=self.provider,
            provider_ref=f"local-{code}",
            code=code,
            value_text=reward.value_text(),
            expires_at=expiry_for(reward, self._clock()),
            link=None,
            action_id=action_id,
            kind=reward.kind,
            amount=face_value(reward),
        )

    def find(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward | None:
        return None

    def deactivate(self, issued: IssuedReward) -> None:
        return None


# -- routing and recording ----------------------------------------------------------------


def issued_from_row(row: sa.Row[Any]) -> IssuedReward:
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


def member_from_row(row: sa.Row[Any]) -> RewardMember:
    m = row._mapping
    attributes = {str(k): str(v) for k, v in (m["attributes"] or {}).items() if v is not None}
    if m["country"] and "country" not in attributes:
        attributes["country"] = m["country"]
    return RewardMember(
        member_pk=m["id"],
        member_id=m["member_id"],
        email=m["email"],
        first_name=m["first_name"],
        last_name=m["last_name"],
        stripe_customer_id=m["stripe_customer_id"],
        attributes=attributes,
    )


class RecordingIssuer:
    """Routes each reward kind to its provider and records what was issued.

    The ``rewards`` row is the local truth: a second ``issue`` for the action returns it
    without asking the provider, and the sync, expiry and reconcile steps read it.
    """

    def __init__(
        self,
        engine: sa.Engine,
        providers: Mapping[str, RewardIssuer],
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.providers = dict(providers)
        self._clock = clock

    def _provider(self, kind: str) -> RewardIssuer:
        try:
            return self.providers[kind]
        except KeyError:
            raise RewardError(f"no issuer for {kind} rewards") from None

    def issue(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward:
        with self.engine.connect() as connection:
            row = reward_tables.get_reward(connection, action_id)
        if row is not None:
            if row.state == "deactivated":
                raise RewardError(f"the reward for action {action_id} was withdrawn")
            return issued_from_row(row)
        issued = self._provider(reward.kind).issue(action_id, campaign, reward, member)
        self._record(campaign, reward, member, issued)
        return issued

    def find(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward | None:
        with self.engine.connect() as connection:
            row = reward_tables.get_reward(connection, action_id)
        if row is not None:
            return issued_from_row(row)
        issued = self._provider(reward.kind).find(action_id, campaign, reward, member)
        if issued is not None:
            self._record(campaign, reward, member, issued)
        return issued

    def deactivate(self, issued: IssuedReward) -> None:
        self._provider(issued.kind).deactivate(issued)
        with write_transaction(self.engine) as connection:
            reward_tables.set_reward_state(
                connection, issued.action_id, "deactivated", self._clock()
            )

    def _record(
        self, campaign: Campaign, reward: Reward, member: RewardMember, issued: IssuedReward
    ) -> None:
        money = face_value(reward) or reward.cost
        coupon = coupon_id(campaign, reward) if issued.provider == "stripe" else None
        with write_transaction(self.engine) as connection:
            reward_tables.record_reward(
                connection,
                action_id=issued.action_id,
                campaign_id=campaign.id,
                member_pk=member.member_pk,
                kind=reward.kind,
                provider=issued.provider,
                provider_ref=issued.provider_ref,
                code=issued.code,
                value_text=issued.value_text,
                amount_minor=money.amount_minor if money else None,
                percent_off=reward.percent_off,
                currency=money.currency if money else None,
                customer=issued.customer,
                coupon_id=coupon,
                link=issued.link,
                expires_at=int(issued.expires_at.timestamp()) if issued.expires_at else None,
                now=self._clock(),
            )

    def close(self) -> None:
        for provider in self.providers.values():
            close = getattr(provider, "close", None)
            if close is not None:
                close()


def build_issuer(settings: AppSettings, engine: sa.Engine) -> RecordingIssuer:
    """The issuer the settings ask for: Stripe when ``rewards.provider`` is ``stripe``,
    otherwise the offline ``local`` one; gifts and invites are the same either way."""
    from providers.gifts import GiftIssuer
    from providers.invites import InviteIssuer

    money: RewardIssuer
    if settings.rewards.provider == "stripe":
        from providers.stripe_issuer import StripeApi, StripeIssuer

        money = StripeIssuer(StripeApi.from_settings(settings.stripe))
    else:
        money = LocalIssuer()
    invites = InviteIssuer(settings.signing_key.get_secret_value(), settings.public_base_url)
    return RecordingIssuer(
        engine,
        {"discount": money, "credit": money, "gift": GiftIssuer(engine), "vip_invite": invites},
    )
