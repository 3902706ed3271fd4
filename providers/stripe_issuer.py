"""Discounts and credits through Stripe, exactly once per action.

- discount: one coupon per campaign and reward shape (``nf-<campaign>-<shape hash>``, found
  again by that id), plus one single-use promotion code per member: ``max_redemptions`` 1,
  restricted to the member's customer, expiring, ``code`` derived from the action id and the
  action id in its metadata.
- credit: a customer balance transaction (negative amount = credit) with the action id in
  its metadata.

Exactly once: every POST carries an idempotency key derived from the action id and the step,
and before creating anything for an action that was attempted before (``first_attempt`` is
false: a retry, a recovery after a crash) the issuer looks for an object an earlier attempt
made (the promotion code by its deterministic ``code``; balance transactions by paging the
customer's list and matching metadata). So neither a crash after Stripe answered nor Stripe
forgetting keys after 24 hours creates a second object, and a first attempt costs one
request (the create), not a lookup and a create.

Transient failures are retried by ``StripeApi`` (``providers.stripe_api``) under the shared
policy, reusing the same idempotency key on every attempt.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import stripe

from domain.campaign import Campaign, Reward
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from providers.rewards import (
    IssuedReward,
    RewardMember,
    TransientRewardError,
    coupon_id,
    expiry_for,
    reward_code,
    utc_now,
)
from providers.stripe_api import PAGE, StripeApi


def _metadata(obj: Any) -> dict[str, str]:
    metadata = getattr(obj, "metadata", None)
    if metadata is None:
        return {}
    data = metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata)
    return {str(k): str(v) for k, v in data.items()}


class StripeIssuer:
    """``RewardIssuer`` for discounts and credits, backed by Stripe."""

    provider = "stripe"

    def __init__(self, api: StripeApi, clock: Callable[[], datetime] = utc_now) -> None:
        self.api = api
        self._clock = clock
        self._coupons: set[str] = set()  # coupons known to exist, so we ask once per process
        # The dispatch threads that meet a new coupon together wait for one of them to
        # make sure of it, instead of each looking it up and creating it.
        self._coupon_lock = threading.Lock()

    def close(self) -> None:
        self.api.close()

    # -- the protocol ----------------------------------------------------------------

    def issue(
        self,
        action_id: str,
        campaign: Campaign,
        reward: Reward,
        member: RewardMember,
        *,
        first_attempt: bool = False,
    ) -> IssuedReward:
        customer = self._customer(member)
        # A retry or a recovery looks for what the earlier attempt made; a first attempt
        # has made nothing yet, so its create is the reward's one request to Stripe.
        if not first_attempt:
            found = self.find(action_id, campaign, reward, member)
            if found is not None:
                return found
        if reward.kind == "discount":
            return self._create_promotion_code(action_id, campaign, reward, customer)
        if reward.kind == "credit":
            return self._create_credit(action_id, campaign, reward, customer)
        raise RewardError(f"Stripe does not issue {reward.kind} rewards")

    def find(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward | None:
        customer = self._customer(member)
        if reward.kind == "discount":
            promo = self._find_promotion_code(action_id)
            if promo is None:
                return None
            expected = coupon_id(campaign, reward)
            if promo.customer != customer or promo.promotion.coupon != expected:
                raise RewardError(
                    f"action {action_id}: Stripe already has promotion code {promo.id} for "
                    f"customer {promo.customer} on coupon {promo.promotion.coupon}, not "
                    f"{customer} on {expected}"
                )
            return self._issued_code(action_id, reward, promo)
        if reward.kind == "credit":
            txn = self._find_credit(customer, action_id, "credit")
            return self._issued_credit(action_id, reward, txn) if txn is not None else None
        return None

    def deactivate(self, issued: IssuedReward) -> None:
        """Discount: the promotion code is switched off. Credit: a reversing balance
        transaction takes the credit back (Stripe cannot delete one)."""
        if issued.kind == "discount":
            self.api.call(
                f"deactivating promotion code {issued.provider_ref}",
                lambda: self.api.client.v1.promotion_codes.update(
                    issued.provider_ref,
                    {"active": False},
                    {"idempotency_key": f"nf-{issued.action_id}-deactivate"},
                ),
            )
            return
        if issued.kind == "credit" and issued.customer and issued.amount:
            if self._find_credit(issued.customer, issued.action_id, "reversal") is not None:
                return
            customer, amount = issued.customer, issued.amount
            self.api.call(
                f"reversing credit {issued.provider_ref}",
                lambda: self.api.client.v1.customers.balance_transactions.create(
                    customer,
                    {
                        "amount": amount.amount_minor,
                        "currency": amount.currency.lower(),
                        "description": "nudgeflow: reward withdrawn",
                        "metadata": {
                            "action_id": issued.action_id,
                            "nf_kind": "reversal",
                            "reverses": issued.provider_ref,
                        },
                    },
                    {"idempotency_key": f"nf-{issued.action_id}-reverse"},
                ),
            )

    # -- discounts ---------------------------------------------------------------------

    def _customer(self, member: RewardMember) -> str:
        if not member.stripe_customer_id:
            raise RewardError(
                f"member {member.member_id} has no Stripe customer (stripe_customer_id is empty)"
            )
        return member.stripe_customer_id

    def ensure_coupon(self, campaign: Campaign, reward: Reward) -> str:
        """The campaign's coupon for this reward shape, created on first use."""
        ident = coupon_id(campaign, reward)
        assert ident is not None
        if ident in self._coupons:
            return ident
        with self._coupon_lock:
            if ident not in self._coupons:
                self._make_sure_of_coupon(ident, campaign, reward)
        return ident

    def _make_sure_of_coupon(self, ident: str, campaign: Campaign, reward: Reward) -> None:
        try:
            self.api.call(
                f"looking up coupon {ident}", lambda: self.api.client.v1.coupons.retrieve(ident)
            )
        except RewardError as exc:
            if "resource_missing" not in str(exc):
                raise
            params: dict[str, Any] = {
                "id": ident,
                "duration": "once",  # one invoice: a thank-you, not a standing price cut
                "name": reward.value_text()[:40],
                "metadata": {"campaign_id": campaign.id, "nf_kind": "discount"},
            }
            if reward.percent_off is not None:
                params["percent_off"] = reward.percent_off
            else:
                assert reward.amount_off is not None
                params["amount_off"] = reward.amount_off.amount_minor
                params["currency"] = reward.amount_off.currency.lower()
            try:
                self.api.call(
                    f"creating coupon {ident}",
                    lambda: self.api.client.v1.coupons.create(
                        params,  # type: ignore[arg-type]
                        {"idempotency_key": f"nf-coupon-{ident}"},
                    ),
                )
            except RewardError as again:
                # Another process created it between our lookup and our create.
                if "resource_already_exists" not in str(again):
                    raise
        self._coupons.add(ident)

    def _find_promotion_code(self, action_id: str) -> stripe.PromotionCode | None:
        code = reward_code(action_id)
        page = self.api.call(
            f"looking up promotion code {code}",
            lambda: self.api.client.v1.promotion_codes.list({"code": code, "limit": PAGE}),
        )
        for promo in page.data:
            if _metadata(promo).get("action_id") == action_id:
                return promo
        return None

    def _create_promotion_code(
        self, action_id: str, campaign: Campaign, reward: Reward, customer: str
    ) -> IssuedReward:
        coupon = self.ensure_coupon(campaign, reward)
        expires = expiry_for(reward, self._clock())
        params: dict[str, Any] = {
            "promotion": {"type": "coupon", "coupon": coupon},
            "code": reward_code(action_id),
            "customer": customer,
            "max_redemptions": 1,
            "metadata": {"action_id": action_id, "campaign_id": campaign.id},
        }
        if expires is not None:
            params["expires_at"] = int(expires.timestamp())
        try:
            promo = self.api.call(
                f"creating the promotion code for action {action_id}",
                lambda: self.api.client.v1.promotion_codes.create(
                    params,  # type: ignore[arg-type]
                    {"idempotency_key": f"nf-{action_id}-promotion-code"},
                ),
            )
        except TransientRewardError:
            raise
        except RewardError:
            # A conflict may mean an earlier attempt got there first (say its key was
            # reused with a later expiry): if Stripe has the code, that is our reward.
            found = self._find_promotion_code(action_id)
            if found is None:
                raise
            promo = found
        return self._issued_code(action_id, reward, promo)

    def _issued_code(
        self, action_id: str, reward: Reward, promo: stripe.PromotionCode
    ) -> IssuedReward:
        customer = promo.customer if isinstance(promo.customer, str) else None
        return IssuedReward(
            provider=self.provider,
            provider_ref=promo.id,
            code=promo.code,
            value_text=reward.value_text(),
            expires_at=datetime.fromtimestamp(promo.expires_at, UTC) if promo.expires_at else None,
            link=None,
            action_id=action_id,
            kind="discount",
            customer=customer,
            amount=reward.amount_off,
        )

    # -- credits -----------------------------------------------------------------------

    def _find_credit(
        self, customer: str, action_id: str, kind: str
    ) -> stripe.CustomerBalanceTransaction | None:
        for txn in self.api.balance_transactions(customer):
            metadata = _metadata(txn)
            if metadata.get("action_id") == action_id and metadata.get("nf_kind") == kind:
                return txn
        return None

    def _create_credit(
        self, action_id: str, campaign: Campaign, reward: Reward, customer: str
    ) -> IssuedReward:
        assert reward.amount is not None
        amount = reward.amount
        txn = self.api.call(
            f"crediting {amount} for action {action_id}",
            lambda: self.api.client.v1.customers.balance_transactions.create(
                customer,
                {
                    "amount": -amount.amount_minor,  # negative: the customer is owed it
                    "currency": amount.currency.lower(),
                    "description": f"nudgeflow: {campaign.name}"[:350],
                    "metadata": {
                        "action_id": action_id,
                        "campaign_id": campaign.id,
                        "nf_kind": "credit",
                    },
                },
                {"idempotency_key": f"nf-{action_id}-credit"},
            ),
        )
        return self._issued_credit(action_id, reward, txn)

    def _issued_credit(
        self, action_id: str, reward: Reward, txn: stripe.CustomerBalanceTransaction
    ) -> IssuedReward:
        customer = txn.customer if isinstance(txn.customer, str) else None
        return IssuedReward(
            provider=self.provider,
            provider_ref=txn.id,
            code=None,
            value_text=reward.value_text(),
            expires_at=None,
            link=None,
            action_id=action_id,
            kind="credit",
            customer=customer,
            amount=Money(-txn.amount, txn.currency.upper()),
        )
