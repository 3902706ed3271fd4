"""VIP invites: signed, expiring links, and their verification.

The link is ``{public_base_url}/vip/{token}``; the token is an itsdangerous
``URLSafeTimedSerializer`` signature (HMAC with ``NUDGEFLOW_SIGNING_KEY``) over the member,
campaign, programme and expiry, so the landing page needs no database lookup to trust it.
``verify_invite`` is what that page calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from domain.campaign import Campaign, Reward
from nudgeflow.errors import RewardError
from providers.rewards import IssuedReward, RewardMember, expiry_for, utc_now

SALT = "nudgeflow.vip-invite"
# An invite with no expires_in in its campaign still expires: links get forwarded.
DEFAULT_DAYS = 30


class InvalidInvite(RewardError):
    """The invite link is forged, damaged, signed with another key, or expired."""


class InviteExpired(InvalidInvite):
    """The invite link is genuine but past its expiry (or ``max_age``)."""


@dataclass(frozen=True)
class InvitePayload:
    member_id: str
    campaign_id: str
    programme: str
    action_id: str
    expires_at: datetime


def _serializer(key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=SALT)


def sign_invite(payload: InvitePayload, key: str) -> str:
    return _serializer(key).dumps(
        {
            "m": payload.member_id,
            "c": payload.campaign_id,
            "p": payload.programme,
            "a": payload.action_id,
            "e": int(payload.expires_at.timestamp()),
        }
    )


def verify_invite(
    token: str,
    key: str,
    max_age: int | timedelta | None = None,
    *,
    now: datetime | None = None,
) -> InvitePayload:
    """Check an invite token; return what it grants or raise ``InvalidInvite``.

    The invite's own expiry always applies; ``max_age`` (seconds since signing) can make the
    landing page stricter still.
    """
    seconds = int(max_age.total_seconds()) if isinstance(max_age, timedelta) else max_age
    try:
        data = _serializer(key).loads(token, max_age=seconds)
    except SignatureExpired:
        raise InviteExpired("this invite link has expired") from None
    except BadSignature:
        raise InvalidInvite("this invite link is not valid (damaged or not ours)") from None
    try:
        payload = InvitePayload(
            member_id=str(data["m"]),
            campaign_id=str(data["c"]),
            programme=str(data["p"]),
            action_id=str(data["a"]),
            expires_at=datetime.fromtimestamp(int(data["e"]), UTC),
        )
    except (KeyError, TypeError, ValueError):
        raise InvalidInvite("this invite link is not valid (unexpected contents)") from None
    if (now or utc_now()) >= payload.expires_at:
        raise InviteExpired("this invite link has expired")
    return payload


class InviteIssuer:
    """``RewardIssuer`` for ``vip_invite`` rewards. Nothing is stored remotely: the recording
    issuer keeps the link, so ``find`` has nothing more to look up."""

    provider = "invite"

    def __init__(
        self, signing_key: str, public_base_url: str, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._key = signing_key
        self._base = public_base_url.rstrip("/")
        self._clock = clock

    def issue(
        self,
        action_id: str,
        campaign: Campaign,
        reward: Reward,
        member: RewardMember,
        *,
        first_attempt: bool = False,
    ) -> IssuedReward:
        if reward.kind != "vip_invite" or reward.programme is None:
            raise RewardError(f"the invite issuer cannot issue a {reward.kind} reward")
        now = self._clock()
        expires = expiry_for(reward, now) or expiry_for(
            Reward("vip_invite", None, expires_in_days=DEFAULT_DAYS), now
        )
        assert expires is not None
        payload = InvitePayload(member.member_id, campaign.id, reward.programme, action_id, expires)
        token = sign_invite(payload, self._key)
        return IssuedReward(
            provider=self.provider,
            provider_ref=f"invite-{action_id}",
            code=None,
            value_text=reward.value_text(),
            expires_at=expires,
            link=f"{self._base}/vip/{token}",
            action_id=action_id,
            kind="vip_invite",
            amount=reward.cost,
        )

    def find(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward | None:
        return None

    def deactivate(self, issued: IssuedReward) -> None:
        # A signed link cannot be recalled; the rewards row is marked deactivated and the
        # landing page should check it before admitting anyone.
        return None
