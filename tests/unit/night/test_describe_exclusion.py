"""``nudgeflow why`` in words for the consent guard: email consent withdrawn, and the
preference centre's pause and categories, each with its date in the business time zone."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from domain.plan import NoConsent
from night.explain import describe_exclusion
from nudgeflow.timeutil import day_end, day_start

ZONE = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("exclusion", "words"),
    [
        (NoConsent(None), "no consent (opted out of email)"),
        (
            NoConsent(("unsubscribed", day_start(date(2026, 11, 2), ZONE))),
            "no consent (unsubscribed on 2026-11-02)",
        ),
        (
            NoConsent(None, paused_until=day_end(date(2027, 1, 15), ZONE)),
            "no consent (paused all nudges until 2027-01-15 in the preference centre)",
        ),
        (
            # Late on the 20th in New York is already the 21st in UTC.
            NoConsent(None, category_out=("surveys", day_end(date(2026, 11, 20), ZONE) - 60)),
            "no consent (unsubscribed from surveys on 2026-11-20)",
        ),
    ],
)
def test_consent_in_words(exclusion: NoConsent, words: str) -> None:
    assert describe_exclusion(exclusion, ZONE) == words
