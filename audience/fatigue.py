"""Nudge fatigue: pure rules; the store gathers the nudges and keeps the tag.

``policy.yaml``::

    fatigue:
      unanswered_nudges: 3   # the most recent nudges whose response window has closed…
      tag: nudge-fatigued    # …all unanswered: the member is tagged,
      rest_for: 90d          # …and rested from campaigns for this long.

``is_fatigued`` is the rule and the reference: ``store.fatigue`` decides for every member at
once in SQL, and a test holds the SQL to this function. Only nudges whose window has closed
count as unanswered; one still open is skipped, neither counted nor waited for, so members
nudged more often than their window (a daily campaign with a one-day window) are rested too.

A member tagged on business date ``D`` (after that night's dispatch) with ``rest_for: 90d``
is excluded on ``D+1 … D+89`` and eligible again on ``D+90``: ``rest_until(D, 90) == D+89``
is the last day of the rest, the value stored as the tag's ``expires_on``. A response or any
engagement clears the tag before the next night's plan (the store does that; it is not a
rule of this module).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Nudge:
    """One of the member's non-held-out nudges, as far as fatigue cares."""

    response_until: int  # epoch seconds when its response window closes
    responded: bool  # a counts_as event by the member inside [response_from, response_until)


def is_fatigued(nudges: Sequence[Nudge], unanswered: int, as_of_end: int) -> bool:
    """Whether the member's most recent ``unanswered`` closed nudges all went unanswered.

    ``nudges`` are the member's nudges since their last rest began, most recent first.
    Walking back from the newest: a response (inside a closed or a still-open window) ends
    the run, so the member is not fatigued; an unanswered nudge whose window is still open
    is "not yet known" and is skipped, neither counting nor breaking the run. Skipping rather
    than waiting matters for the most nudged members: with a nudge every week and two-week
    windows the newest window is always open, and they would never be rested.
    """
    if unanswered < 1:
        raise ValueError(f"unanswered must be at least 1, got {unanswered}")
    closed_unanswered = 0
    for nudge in nudges:
        if nudge.responded:
            return False
        if nudge.response_until <= as_of_end:
            closed_unanswered += 1
            if closed_unanswered == unanswered:
                return True
    return False


def rest_until(as_of: date, rest_days: int) -> date:
    """The last business date of a rest that starts with a tag on ``as_of`` (inclusive).

    ``rest_until(D, 90) == D + 89``: the member is excluded through that date and eligible
    the day after, ``D + rest_days``.
    """
    if rest_days < 1:
        raise ValueError(f"rest_days must be at least 1, got {rest_days}")
    return as_of + timedelta(days=rest_days - 1)


def is_resting(until: date, as_of: date) -> bool:
    """Whether a rest lasting through ``until`` still excludes the member on ``as_of``."""
    return as_of <= until
