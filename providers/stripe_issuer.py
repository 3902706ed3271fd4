"""Discounts and credits through Stripe, exactly once per action.

- discount: one coupon per campaign and reward shape (``nf-<campaign>-<shape hash>``, found
  again by that id), plus one single-use promotion code per member: ``max_redemptions`` 1,
  restricted to the member's customer, expiring, ``code`` derived from the action id and the
  action id in its metadata.
- credit: a customer balance transaction (negative amount = credit) with the action id in
  its metadata.

Exactly once: every POST carries an idempotency key derived from the action id and the step,
and before creating anything the issuer looks for an object an earlier attempt made (the
promotion code by its deterministic ``code``; balance transactions by paging the customer's
list and matching metadata). So neither a crash after Stripe answered nor Stripe forgetting
keys after 24 hours creates a second object.

``StripeApi`` runs every request through the shared policy of ``providers.retry``. Retried:
connection failures the SDK marks retryable (timeouts, resets, dropped responses), and what
Stripe's ``Stripe-Should-Retry`` header allows, or without it 409, 429 and 5xx. A 429's
``Retry-After`` pauses the shared ``RateLimiter``, which spaces every request to
``max_requests_per_second``. The SDK's own retries stay off (``max_network_retries=0``): they
would run beneath the limiter, ignore ``Retry-After`` and sleep a fixed 0.5–5 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import requests
import stripe

from domain.campaign import Campaign, Reward
from nudgeflow.errors import RewardError
from nudgeflow.money import Money
from providers.issuers import (
    IssuedReward,
    RewardMember,
    TransientRewardError,
    coupon_id,
    expiry_for,
    reward_code,
    utc_now,
)
from providers.ratelimit import RateLimiter
from providers.retry import RetryPolicy, TransientFailure, call_with_retries, requested_wait

if TYPE_CHECKING:
    from settings.app import StripeSettings

T = TypeVar("T")
S = TypeVar("S", bound=stripe.StripeObject)
PAGE = 100  # Stripe's largest page
RETRIED_STATUSES = (409, 429)  # and every 5xx


def _reason(exc: stripe.StripeError) -> str:
    code = getattr(exc, "code", None)
    message = exc.user_message or str(exc)
    return f"{code}: {message}" if code else message


def _problem(exc: stripe.StripeError) -> str:
    return f"{type(exc).__name__}: {_reason(exc).splitlines()[0]}"


def should_retry(exc: stripe.StripeError) -> bool:
    """Stripe's own rule for an error response, as stripe-python applies it: the
    ``Stripe-Should-Retry`` header decides when present; otherwise 409, 429 and 5xx."""
    header = (exc.headers or {}).get("Stripe-Should-Retry")
    if header in ("true", "false"):
        return header == "true"
    status = exc.http_status
    if status is None:
        return isinstance(exc, stripe.APIError)  # no answer to judge: an API failure
    return status in RETRIED_STATUSES or status >= 500


class StripeApi:
    """The Stripe client plus the retry policy and rate limiter: every call goes through
    :meth:`call`. Shared by the issuer, the redemption sync and reconcile."""

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        max_requests_per_second: float = 20.0,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        # Our own session so that close() releases its sockets (tests run with warnings
        # as errors, and a long-running worker should not leak connections either).
        self._session = requests.Session()
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": base_url},
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=timeout, session=self._session),
        )
        self.limiter = RateLimiter(max_requests_per_second)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: StripeSettings, **kwargs: Any) -> StripeApi:
        if settings.api_key is None:
            raise RewardError(
                "NUDGEFLOW_STRIPE__API_KEY is not set; set it, or use "
                "NUDGEFLOW_REWARDS__PROVIDER=local"
            )
        return cls(
            settings.api_key.get_secret_value(),
            settings.base_url,
            max_requests_per_second=settings.max_requests_per_second,
            **kwargs,
        )

    def close(self) -> None:
        self._session.close()

    def call(self, what: str, request: Callable[[], T]) -> T:
        """Run one Stripe request with rate limiting and retries; ``what`` names it in
        errors. Permanent refusals raise ``RewardError`` at once; ``TransientRewardError``
        when the retries run out."""
        try:
            return call_with_retries(
                lambda: self._attempt(what, request),
                self.retry,
                limiter=self.limiter,
                sleep=self._sleep,
            )
        except TransientFailure as exc:
            raise TransientRewardError(
                f"Stripe did not complete {what} after {self.retry.attempts} attempts "
                f"({exc.problem})"
            ) from None

    @staticmethod
    def _attempt(what: str, request: Callable[[], T]) -> T:
        try:
            return request()
        except stripe.APIConnectionError as exc:
            # Timeouts, resets and dropped responses: the request may or may not have
            # reached Stripe; the idempotency key makes repeating it safe.
            if not exc.should_retry:
                raise RewardError(f"Stripe {what}: {_reason(exc)}") from None
            raise TransientFailure(_problem(exc)) from None
        except stripe.IdempotencyError as exc:
            raise RewardError(f"Stripe refused {what}: idempotency_error: {_reason(exc)}") from None
        except stripe.StripeError as exc:
            if not should_retry(exc):
                raise RewardError(f"Stripe refused {what}: {_reason(exc)}") from None
            raise TransientFailure(
                _problem(exc),
                retry_after=requested_wait(exc.headers, time.time()),
                rate_limited=isinstance(exc, stripe.RateLimitError),
            ) from None

    def list_all(
        self,
        what: str,
        fetch: Callable[[Any], stripe.ListObject[S]],
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[S]:
        """Every object of a Stripe list (newest first, as Stripe lists), page by page;
        ``fetch`` takes the page's parameters."""
        after: str | None = None
        while True:
            page_params: dict[str, Any] = {**(params or {}), "limit": PAGE}
            if after:
                page_params["starting_after"] = after
            page = self.call(what, partial(fetch, page_params))
            yield from page.data
            if not page.has_more or not page.data:
                return
            after = str(page.data[-1]["id"])

    def balance_transactions(self, customer: str) -> Iterator[stripe.CustomerBalanceTransaction]:
        """Every balance transaction of the customer, newest first, page by page."""
        return self.list_all(
            f"listing balance transactions of {customer}",
            lambda params: self.client.v1.customers.balance_transactions.list(customer, params),
        )


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

    def close(self) -> None:
        self.api.close()

    # -- the protocol ----------------------------------------------------------------

    def issue(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward:
        customer = self._customer(member)
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
        return ident

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
