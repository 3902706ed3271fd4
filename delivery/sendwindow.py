"""When an email may arrive: the policy's send window in the member's day (pure).

``send_window: {start: "09:00", end: "18:00", timezone: member}`` in ``campaigns/policy.yaml``
means "deliver between 09:00 and 18:00 on the member's own clock" (or the business clock
with ``timezone: business``). The nightly run happens at night, so most emails are
scheduled: SendGrid's ``send_at`` holds them until the window opens, at most 72 hours
ahead. No clock is read here: the caller passes the instant it is sending at.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.campaign import Policy

# SendGrid refuses a send_at more than 72 hours ahead.
MAX_AHEAD = timedelta(hours=72)


@dataclass(frozen=True)
class SendWindow:
    """Local opening hours for delivery: ``start`` inclusive, ``end`` exclusive."""

    start: time
    end: time
    timezone: str = "member"  # member | business

    def __post_init__(self) -> None:
        if self.start >= self.end:
            raise ValueError("a send window must start before it ends")

    @classmethod
    def from_policy(cls, policy: Policy) -> SendWindow:
        return cls(
            start=time.fromisoformat(policy.send_start),
            end=time.fromisoformat(policy.send_end),
            timezone=policy.send_timezone,
        )


def window_zone(window: SendWindow, member_timezone: str | None, business: ZoneInfo) -> ZoneInfo:
    """The clock the window is read on: the member's zone when known and valid, else the
    business zone (an imported member may have no or a misspelt time zone)."""
    if window.timezone != "member" or not member_timezone:
        return business
    try:
        return ZoneInfo(member_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return business


def _local(day: datetime, clock: time, zone: ZoneInfo) -> datetime:
    """``clock`` on ``day``'s date in ``zone``. A wall time skipped by a DST change (02:30
    on a spring-forward night) resolves to the instant just after the gap, which is still
    inside the window."""
    return datetime.combine(day.date(), clock, tzinfo=zone)


def next_send_instant(
    window: SendWindow, now: datetime, member_timezone: str | None, business: ZoneInfo
) -> datetime:
    """The first instant at or after ``now`` that falls inside the window on the member's
    clock, in UTC. ``now`` must be time-zone aware."""
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    zone = window_zone(window, member_timezone, business)
    local = now.astimezone(zone)
    if window.start <= local.time() < window.end:
        return now.astimezone(UTC)
    opening = _local(local, window.start, zone)
    if opening <= local:  # after today's window: tomorrow's opening
        opening = _local(local + timedelta(days=1), window.start, zone)
    # A daily window always opens within ~25 hours; the cap only guards the SendGrid limit.
    return min(opening.astimezone(UTC), now.astimezone(UTC) + MAX_AHEAD)


def send_at_for(
    window: SendWindow, now: datetime, member_timezone: str | None, business: ZoneInfo
) -> datetime | None:
    """What to put in ``send_at``: ``None`` when ``now`` is inside the window (send at once),
    else the instant the window next opens."""
    instant = next_send_instant(window, now, member_timezone, business)
    return None if instant <= now else instant
