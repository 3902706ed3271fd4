"""A client-side rate limiter: a thread-safe token bucket that callers wait on.

Stripe allows 100 requests/s live and 25/s in test mode; Prefect's own rate
limits cost a server round trip per acquisition, so providers are throttled here, in
process (``SharedRateLimiter`` keeps one limit for every process that shares a
PostgreSQL database, in ``store.rate_buckets``). ``pause`` lets a 429's ``Retry-After``
hold back every thread, not just the one that was refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from store.rate_buckets import hold, take_slot


class RateLimiter:
    """At most ``per_second`` acquisitions a second, with bursts of up to ``burst``."""

    def __init__(
        self,
        per_second: float,
        *,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError("per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.per_second = per_second
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = burst
        self._stamp = clock()
        self._paused_until = 0.0

    def acquire(self) -> float:
        """Wait for a token; return how long this call waited, in seconds."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.per_second)
            self._stamp = now
            # Taking the token now, even into debt, reserves this caller's slot: later
            # callers queue behind it instead of all waking at once when the wait ends.
            self._tokens -= 1
            wait = max(0.0, -self._tokens / self.per_second, self._paused_until - now)
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Hand out no tokens for ``seconds`` (the server asked us to back off)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))


class SharedRateLimiter(RateLimiter):
    """The same limit kept by every process that shares the database (PostgreSQL): slots
    are taken from the bucket ``name`` in ``store.rate_buckets``, on the database's clock,
    so N dispatch workers together never exceed ``per_second``. At high rates a process
    takes a block of consecutive slots (``block_seconds`` worth) per round trip and hands
    them out to its threads in turn; a slot left unused is lost, never lent."""

    def __init__(
        self,
        engine: Engine,
        name: str,
        per_second: float,
        *,
        block_seconds: float = 0.02,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(per_second, sleep=sleep, clock=clock)
        self._engine = engine
        self._name = name
        self._interval = 1.0 / per_second
        self._block = max(1, min(100, int(per_second * block_seconds)))
        self._next = 0.0  # this process's next slot, on its own monotonic clock
        self._left = 0  # slots left in the block taken last

    def acquire(self) -> float:
        with self._lock:
            if self._left == 0:
                with self._engine.begin() as connection:
                    wait = take_slot(connection, self._name, self._interval * self._block)
                self._next = self._clock() + wait
                self._left = self._block
            slot = self._next
            self._next += self._interval
            self._left -= 1
        wait = max(0.0, slot - self._clock())
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._left = 0  # the block taken before the refusal is given up
            with self._engine.begin() as connection:
                hold(connection, self._name, seconds)
