"""The one retry policy of the outside services: how many attempts, how long to wait between
them, and when a server's own "come back later" overrides our backoff.

Both providers run their requests through :func:`call_with_retries` (tenacity underneath).
A provider decides what may be repeated: it raises :class:`TransientFailure` only for a
failure that cannot do harm twice (SendGrid: nothing was sent; Stripe: the request carries an
idempotency key), and its own errors for everything else, which are never retried. A
rate-limited failure also pauses the shared :class:`~providers.ratelimit.RateLimiter`, so every
thread backs off, not just the one that was refused.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import tenacity
from tenacity.wait import wait_base

from providers.ratelimit import RateLimiter

T = TypeVar("T")
# X-RateLimit-Reset values above this are epoch instants (SendGrid); below, seconds.
EPOCH_THRESHOLD = 1e9


class TransientFailure(Exception):
    """One attempt failed in a way that is safe to repeat.

    ``problem`` describes it for the error raised when attempts run out; ``retry_after`` is
    the wait the server asked for (seconds), if it named one; ``rate_limited`` marks a 429.
    """

    def __init__(
        self, problem: str, *, retry_after: float | None = None, rate_limited: bool = False
    ) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after
        self.rate_limited = rate_limited


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all; between them the backoff doubles from ``base_delay`` up to
    ``max_delay``. With ``jitter`` each wait is drawn between half and all of that, so many
    clients that failed together do not retry together. A wait the server asks for is
    honoured up to ``max_server_wait`` instead of the backoff."""

    attempts: int = 6
    base_delay: float = 0.25
    max_delay: float = 20.0
    jitter: bool = True
    max_server_wait: float = 60.0

    def backoff(self) -> wait_base:
        """Tenacity's exponential wait for this policy (attempt n waits base·2ⁿ⁻¹, capped)."""
        if not self.jitter:
            return tenacity.wait_exponential(multiplier=self.base_delay, max=self.max_delay)
        half, half_max = self.base_delay / 2, self.max_delay / 2
        return tenacity.wait_exponential(
            multiplier=half, max=half_max
        ) + tenacity.wait_random_exponential(multiplier=half, max=half_max)


def requested_wait(headers: Mapping[str, str] | None, now: float) -> float | None:
    """Seconds the server asked us to wait: ``Retry-After`` (seconds), else
    ``X-RateLimit-Reset`` (an epoch instant, or seconds when small). ``None`` when neither
    header is there or parses."""
    if not headers:
        return None
    for name in ("Retry-After", "X-RateLimit-Reset"):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue  # an unparsable header: the next one, or our own backoff
        if name == "X-RateLimit-Reset" and value > EPOCH_THRESHOLD:
            value -= now
        return max(0.0, value)
    return None


def call_with_retries(
    request: Callable[[], T],
    policy: RetryPolicy,
    *,
    limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``request`` until it returns, raises anything but ``TransientFailure``, or has
    used ``policy.attempts``; then the last ``TransientFailure`` is raised again. Every
    attempt first takes a token from ``limiter``."""
    backoff = policy.backoff()

    def attempt() -> T:
        if limiter is not None:
            limiter.acquire()
        return request()

    def wait(state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        assert isinstance(failure, TransientFailure)
        if failure.retry_after is not None:
            seconds = min(policy.max_server_wait, failure.retry_after)
        else:
            seconds = backoff(state)
        # Tenacity works out the wait after every retryable failure, the last one included:
        # a 429 on the last attempt still holds back the other threads.
        if failure.rate_limited and limiter is not None:
            limiter.pause(seconds)
        return seconds

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(1, policy.attempts)),
        wait=wait,
        retry=tenacity.retry_if_exception_type(TransientFailure),
        sleep=sleep,
        reraise=True,
    )
    return retrying(attempt)
