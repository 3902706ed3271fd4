"""Campaign audiences: the rule language plus criteria on the nightly profile (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from audience.pathways import PathwayTarget
from audience.rules import Rule

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class Audience:
    rule: Rule  # events, spend, tenure, attributes (country, timezone), tags, all_of/any_of/not
    stages: tuple[str, ...] | None = None
    entered_within_days: int | None = None  # entered the current stage within N days
    last_purchase_within_days: int | None = None
    segments: tuple[str, ...] | None = None
    score_min: float | None = None
    score_max: float | None = None
    pathway: PathwayTarget | None = None  # a position on a pathway (store.pathways_sql)


@dataclass(frozen=True)
class ProfileFacts:
    """What the refresh computed for one member (the columns audiences may test)."""

    stage: str | None
    stage_entered_on: date | None
    stage_entry_initial: bool  # found by the first refresh: not a real entry
    last_purchase_at: int | None
    segment: str | None
    score: float


def explain_profile(
    audience: Audience, profile: ProfileFacts, as_of: date, as_of_end: int
) -> str | None:
    """``None`` when the profile criteria hold, else the first that does not, in words.

    ``entered_stage.within N`` holds when the member entered their stage on one of the last
    N business days (``as_of`` included) and it was a real move, not the first refresh.
    """
    if audience.stages is not None and profile.stage not in audience.stages:
        wanted = " or ".join(audience.stages)
        return f"is in stage {profile.stage or '(none)'}; the audience is {wanted}"
    if audience.entered_within_days is not None:
        entered = profile.stage_entered_on
        if entered is None or profile.stage_entry_initial:
            return "has no recorded stage entry (stages found by the first run do not count)"
        if (as_of - entered).days >= audience.entered_within_days:
            return (
                f"entered {profile.stage} on {entered.isoformat()}, not within "
                f"{audience.entered_within_days} days"
            )
    if audience.last_purchase_within_days is not None:
        oldest = as_of_end - audience.last_purchase_within_days * SECONDS_PER_DAY
        if profile.last_purchase_at is None or profile.last_purchase_at < oldest:
            return f"has not purchased in the last {audience.last_purchase_within_days} days"
    if audience.segments is not None and profile.segment not in audience.segments:
        wanted = " or ".join(audience.segments)
        return f"is in RFM segment {profile.segment or '(none)'}; the audience is {wanted}"
    if audience.score_min is not None and profile.score < audience.score_min:
        return f"has score {profile.score:g}; needs at least {audience.score_min:g}"
    if audience.score_max is not None and profile.score > audience.score_max:
        return f"has score {profile.score:g}; needs at most {audience.score_max:g}"
    return None
