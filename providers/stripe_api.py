"""The Stripe client as nudgeflow uses it: every request rate-limited, retried by the shared
policy of ``providers.retry``, and its refusals turned into ``RewardError``.

Retried: connection failures the SDK marks retryable (timeouts, resets, dropped responses),
and what Stripe's ``Stripe-Should-Retry`` header allows, or without it 409, 429 and 5xx. Safe
because every POST carries an idempotency key derived from the action id. A 429's
``Retry-After`` pauses the shared ``RateLimiter``, which spaces every request to
``max_requests_per_second``. The SDK's own retries stay off (``max_network_retries=0``): they
would run beneath the limiter, ignore ``Retry-After`` and sleep a fixed 0.5–5 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar

import requests
import stripe

from nudgeflow.errors import RewardError
from providers.ratelimit import RateLimiter
from providers.retry import RetryPolicy, TransientFailure, call_with_retries, requested_wait
from providers.rewards import TransientRewardError

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
        limiter: RateLimiter | None = None,
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
        # Shared by the processes of a night when given (``SharedRateLimiter``).
        self.limiter = limiter or RateLimiter(max_requests_per_second)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep

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

    def list_newer(
        self,
        what: str,
        fetch: Callable[[Any], stripe.ListObject[S]],
        newer_than: str,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[S]:
        """Every object of a Stripe list created after the object ``newer_than``, oldest
        first, page by page. ``ending_before`` gives the page of objects just newer than the
        cursor, still newest first: each page is read backwards, and the next one ends
        before its newest object (as stripe-python's own ``previous_page`` does)."""
        before = newer_than
        while True:
            page_params: dict[str, Any] = {**(params or {}), "limit": PAGE}
            page_params["ending_before"] = before
            page = self.call(what, partial(fetch, page_params))
            yield from reversed(page.data)
            if not page.has_more or not page.data:
                return
            before = str(page.data[0]["id"])

    def balance_transactions(self, customer: str) -> Iterator[stripe.CustomerBalanceTransaction]:
        """Every balance transaction of the customer, newest first, page by page."""
        return self.list_all(
            f"listing balance transactions of {customer}",
            lambda params: self.client.v1.customers.balance_transactions.list(customer, params),
        )
