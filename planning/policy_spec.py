"""The shape of ``campaigns/policy.yaml``: guards that apply to every campaign (pydantic,
strict; each key's docstring is its description in the JSON Schema for editors)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import Field, field_validator

from audience.fields import MAX_COUNT, STRICT, Days, Identifier, NonNegativeMoney
from audience.filespec import Broken, FileSpec
from domain.campaign import DEFAULT_PUBLIC_EMAIL_DOMAINS

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


class CapSpec(FileSpec):
    """A frequency cap: at most ``max`` nudges in any ``per`` days, across all campaigns."""

    model_config = STRICT
    max: int = Field(ge=1, le=MAX_COUNT)
    """The most nudges a member receives, from all campaigns together, in any window of
    `per` days (tonight's earlier selections count). Example: `max: 2`."""
    per: Days
    """The length of the rolling window. Example: `per: 7d`."""


class FatigueSpec(FileSpec):
    """Members who ignore nudge after nudge are tagged and rested."""

    model_config = STRICT
    unanswered_nudges: int = Field(default=3, ge=1, le=100)
    """How many nudges in a row without a response (within each campaign's
    `response.within`) tag a member as fatigued, 1 to 100. Example: `unanswered_nudges: 3`."""
    tag: Identifier = "nudge-fatigued"
    """The tag a fatigued member gets (campaigns can exclude it). Example:
    `tag: nudge-fatigued`."""
    rest_for: Days = 90
    """How long a fatigued member is rested from every campaign. Example: `rest_for: 90d`."""
    recover_on: Literal["any_response"] = "any_response"
    """What ends a rest early: any later response clears the tag. Example:
    `recover_on: any_response`."""


class SendWindowSpec(FileSpec):
    """The part of the day emails are scheduled to arrive in."""

    model_config = STRICT
    start: str = "09:00"
    """The earliest time of day an email arrives (HH:MM, 24 hours). Example: `start: "09:00"`."""
    end: str = "18:00"
    """The latest time of day an email arrives (HH:MM, after `start`). Example:
    `end: "18:00"`."""
    timezone: Literal["member", "business"] = "member"
    """Whose clock the window is read on: the member's own time zone (`member`) or the
    business time zone (`business`). Example: `timezone: member`."""

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, value: str) -> str:
        if not _CLOCK.match(value):
            raise ValueError(f"expected a time of day such as 09:00, got {value!r}")
        return value

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        start, end = valid.get("start"), valid.get("end")
        if start is not None and end is not None and start >= end:
            yield None, "start must be before end"


class ReferralPolicySpec(FileSpec):
    """What the referral-fraud guards of every referral campaign take as given."""

    model_config = STRICT
    public_email_domains: list[str] = Field(
        default_factory=lambda: sorted(DEFAULT_PUBLIC_EMAIL_DOMAINS), max_length=10_000
    )
    """Email domains anyone can have an address at: an advocate and a referred member who
    share one of these are not the same company; sharing any other domain is a
    self-referral. Replaces the default list (gmail.com, outlook.com, yahoo.com and other
    large providers). Example: `public_email_domains: [gmail.com, outlook.com, yahoo.com]`."""

    @field_validator("public_email_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        cleaned = [d.strip().lower() for d in value]
        for domain in cleaned:
            if not _DOMAIN.match(domain):
                raise ValueError(f"expected a domain such as gmail.com, got {domain!r}")
        return cleaned


class PolicySpec(FileSpec):
    """``campaigns/policy.yaml``: guards that apply to every campaign."""

    model_config = STRICT
    frequency_caps: list[CapSpec] = Field(default_factory=list)
    """Rolling limits on how many nudges one member receives from all campaigns together.
    Example: `frequency_caps: [{max: 2, per: 7d}, {max: 4, per: 30d}]`."""
    fatigue: FatigueSpec = FatigueSpec()
    """When members who ignore nudges are tagged and rested. Example:
    `fatigue: {unanswered_nudges: 3, rest_for: 90d}`."""
    send_window: SendWindowSpec = SendWindowSpec()
    """When in the day emails arrive. Example:
    `send_window: {start: "09:00", end: "18:00", timezone: member}`."""
    categories: list[Identifier] = Field(default_factory=list, max_length=50)
    """The categories a campaign may name in its `category`, in the order the preference
    centre lists them; a member may unsubscribe from each one. Example:
    `categories: [rewards, surveys, community]`."""
    referrals: ReferralPolicySpec = ReferralPolicySpec()
    """The referral-fraud guards' list of public email domains. Example:
    `referrals: {public_email_domains: [gmail.com, outlook.com]}`."""
    approval_above: NonNegativeMoney | None = None
    """Rewards that cost more than this wait for a person's approval (`nudgeflow approvals`)
    before they are issued; their budget is reserved meanwhile. A campaign's own
    `approval_above` replaces it. None: no reward needs approval. Example:
    `approval_above: "50.00 USD"`."""
    approval_expires_after: Days = 7
    """How long a reward waits for a decision: the night after that, an undecided approval
    expires and its reservation goes back to the budget. Example:
    `approval_expires_after: 7d`."""

    @classmethod
    def check(cls, valid: Mapping[str, Any], given: frozenset[str]) -> Iterator[Broken]:
        categories = valid.get("categories") or []
        twice = sorted({c for c in categories if categories.count(c) > 1})
        if twice:
            yield "categories", f"listed more than once: {', '.join(twice)}"
