"""A child process of the shared rate limit test: ``COUNT`` Stripe requests from
``THREADS`` threads through ``StripeApi``, limited as ``bootstrap`` limits them for a
dispatch worker: by the database's bucket (``shared``) or in this process (``local``).

::

    python -m tests.integration.providers.shared_rate_child DB_URL STRIPE_URL RATE COUNT MODE
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

THREADS = 4


def main(argv: list[str]) -> int:
    from providers.ratelimit import RateLimiter, SharedRateLimiter
    from providers.stripe_api import StripeApi
    from store.engine import create_store_engine

    url, stripe_url, rate, count, mode = argv[0], argv[1], float(argv[2]), int(argv[3]), argv[4]
    engine = create_store_engine(url)
    limiter = SharedRateLimiter(engine, "stripe", rate) if mode == "shared" else RateLimiter(rate)
    api = StripeApi("sk_test_rate", stripe_url, max_requests_per_second=rate, limiter=limiter)

    def one(_: int) -> None:
        api.call("reading the customer", lambda: api.client.v1.customers.retrieve("cus_rate"))

    try:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(one, range(count)))
    finally:
        api.close()
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
