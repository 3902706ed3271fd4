"""``nudgeflow stripe sync`` through the console script against the Stripe fake: a second sync
with nothing new reads nothing, and one after new events reads only those."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.stripe_api import StripeFake
from tests.functional.runner import Nudgeflow

START = 1_790_000_000


@pytest.fixture
def stripe() -> Iterator[StripeFake]:
    with StripeFake() as fake:
        yield fake


def discounts_of_others(stripe: StripeFake, count: int, start: int) -> None:
    """Discounts other Stripe customers applied: read by the sync, nothing to record."""
    for n in range(count):
        stripe.emit(
            "customer.discount.created",
            {"id": f"di_{start}_{n}", "object": "discount", "promotion_code": None},
            created=start,
        )


def test_a_second_stripe_sync_reads_only_new_events(
    nudgeflow: Nudgeflow, stripe: StripeFake
) -> None:
    sync = nudgeflow.configure(
        NUDGEFLOW_STRIPE__API_KEY="sk_test_sync", NUDGEFLOW_STRIPE__BASE_URL=stripe.url
    )
    discounts_of_others(stripe, 2, START)

    first = sync("stripe", "sync")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("read 2 events: 0 redemptions recorded"), first.stdout

    again = sync("stripe", "sync")
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith("read 0 events: 0 redemptions recorded"), again.stdout

    discounts_of_others(stripe, 3, START)  # in the very second the cursor stopped in
    later = sync("stripe", "sync")
    assert later.stdout.startswith("read 3 events:"), later.stdout
