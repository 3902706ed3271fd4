"""The shared retry policy: what is retried, how long each wait is, and how a 429 holds back
every thread through the rate limiter."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from providers.ratelimit import RateLimiter
from providers.retry import RetryPolicy, TransientFailure, call_with_retries, requested_wait


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def failing(*failures: Exception, result: str = "done") -> tuple[list[int], Callable[[], str]]:
    """A request that raises ``failures`` in turn, then returns ``result``."""
    calls: list[int] = []

    def request() -> str:
        calls.append(1)
        if len(calls) <= len(failures):
            raise failures[len(calls) - 1]
        return result

    return calls, request


def test_transient_failures_are_retried_with_doubling_waits() -> None:
    sleeps = Sleeps()
    calls, request = failing(TransientFailure("a"), TransientFailure("b"), TransientFailure("c"))
    policy = RetryPolicy(attempts=5, base_delay=0.25, max_delay=0.75, jitter=False)
    assert call_with_retries(request, policy, sleep=sleeps) == "done"
    assert len(calls) == 4
    assert sleeps.waits == [0.25, 0.5, 0.75]  # capped at max_delay


def test_jitter_stays_between_half_and_all_of_the_backoff() -> None:
    sleeps = Sleeps()
    _, request = failing(*(TransientFailure("x") for _ in range(5)))
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=4.0)
    call_with_retries(request, policy, sleep=sleeps)
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= w <= c for w, c in zip(sleeps.waits, ceilings, strict=True))


def test_the_last_failure_is_raised_when_attempts_run_out() -> None:
    sleeps = Sleeps()
    calls, request = failing(*(TransientFailure(f"try {n}") for n in range(5)))
    with pytest.raises(TransientFailure, match="try 2"):
        call_with_retries(request, RetryPolicy(attempts=3), sleep=sleeps)
    assert len(calls) == 3
    assert len(sleeps.waits) == 2


def test_other_errors_are_never_retried() -> None:
    sleeps = Sleeps()
    calls, request = failing(ValueError("permanent"))
    with pytest.raises(ValueError, match="permanent"):
        call_with_retries(request, RetryPolicy(attempts=5), sleep=sleeps)
    assert len(calls) == 1
    assert sleeps.waits == []


def test_the_server_names_the_wait_up_to_a_limit() -> None:
    sleeps = Sleeps()
    _, request = failing(TransientFailure("429", retry_after=7.0), TransientFailure("503"))
    policy = RetryPolicy(attempts=3, base_delay=0.5, jitter=False, max_server_wait=5.0)
    call_with_retries(request, policy, sleep=sleeps)
    assert sleeps.waits == [5.0, 1.0]


def test_a_429_pauses_the_limiter_even_on_the_last_attempt() -> None:
    now = [100.0]
    limiter = RateLimiter(1000.0, clock=lambda: now[0], sleep=lambda s: None)
    _, request = failing(TransientFailure("429", retry_after=3.0, rate_limited=True))
    with pytest.raises(TransientFailure):
        call_with_retries(request, RetryPolicy(attempts=1), limiter=limiter, sleep=Sleeps())
    assert limiter.acquire() == pytest.approx(3.0)  # every other caller now waits


def test_every_attempt_takes_a_token() -> None:
    taken: list[float] = []
    limiter = RateLimiter(1.0, clock=lambda: 0.0, sleep=taken.append)
    _, request = failing(TransientFailure("503"), TransientFailure("503"))
    call_with_retries(request, RetryPolicy(attempts=3), limiter=limiter, sleep=Sleeps())
    assert taken == [1.0, 2.0]  # the second and third attempts waited for their tokens


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"Retry-After": "2.5"}, 2.5),
        ({"Retry-After": "1", "X-RateLimit-Reset": "1000000109"}, 1.0),
        ({"X-RateLimit-Reset": "1000000109"}, 9.0),  # an epoch instant (SendGrid)
        ({"X-RateLimit-Reset": "4"}, 4.0),  # seconds
        ({"X-RateLimit-Reset": "1000000050"}, 0.0),  # already past
        ({"Retry-After": "soon", "X-RateLimit-Reset": "3"}, 3.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_requested_wait(headers: dict[str, str] | None, wait: float | None) -> None:
    assert requested_wait(headers, now=1_000_000_100.0) == wait
