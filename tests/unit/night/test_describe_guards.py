"""``nudgeflow why`` in words for the season and the referral guards, conversion dates in
the business time zone."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from domain.plan import Exclusion, OutOfSeason, ReferralLimit, ReferralRefused
from domain.referrals import Conversion, Person, Verdict
from night.explain import describe_exclusion
from nudgeflow.timeutil import day_end

ZONE = ZoneInfo("America/New_York")
LATE = day_end(date(2026, 11, 20), ZONE) - 60  # already the 21st in UTC
FRIEND = Person(2, "bea", "bea@acme.io", None)
CONVERSION = Conversion(LATE, "r7", "bea", FRIEND, LATE - 10, LATE - 100)


@pytest.mark.parametrize(
    ("exclusion", "words"),
    [
        (
            OutOfSeason(date(2026, 12, 1), date(2026, 12, 24)),
            "out of season (the campaign runs from 2026-12-01 to 2026-12-24)",
        ),
        (OutOfSeason(date(2026, 12, 1), None), "out of season (the campaign runs from 2026-12-01)"),
        (OutOfSeason(None, date(2026, 1, 6)), "out of season (the campaign runs until 2026-01-06)"),
        (
            ReferralRefused(
                (Verdict(CONVERSION, "self_referral", "bea shares the advocate's email domain"),)
            ),
            "self-referral (referral r7 converted on 2026-11-20: bea shares the advocate's "
            "email domain)",
        ),
        (
            ReferralRefused(
                (
                    Verdict(CONVERSION, "referral_existing_customer", "bea was a customer"),
                    Verdict(CONVERSION, "referral_unconverted", "bea has made no purchase"),
                )
            ),
            "referred an existing customer (referral r7 converted on 2026-11-20: bea was a "
            "customer); referral not converted (referral r7 converted on 2026-11-20: bea has "
            "made no purchase)",
        ),
        (
            ReferralRefused(()),
            "referral not converted (no referral_converted event names a referred member)",
        ),
        (
            ReferralLimit(5, 5, 30),
            "referral velocity (5 referrals rewarded in the last 30 days, at most 5)",
        ),
    ],
)
def test_guards_in_words(exclusion: Exclusion, words: str) -> None:
    assert describe_exclusion(exclusion, ZONE) == words
