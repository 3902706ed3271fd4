"""The offline issuer: discounts and credits without Stripe, the default provider.

Its codes are the ones Stripe would carry (``reward_code``), so a demo's emails look like
production's; nothing leaves the process.
"""

from __future__ import annotations

from domain.campaign import Campaign, Reward
from nudgeflow.errors import RewardError
from providers.rewards import (
    Clock,
    IssuedReward,
    RewardMember,
    expiry_for,
    face_value,
    reward_code,
    utc_now,
)

MONEY_KINDS = ("discount", "credit")


class LocalIssuer:
    """``RewardIssuer`` for discounts and credits with deterministic codes and expiries.

    ``RecordingIssuer`` stores what it issues; there is no remote copy to ``find`` or
    withdraw.
    """

    provider = "local"

    def __init__(self, clock: Clock = utc_now) -> None:
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
        if reward.kind not in MONEY_KINDS:
            raise RewardError(f"the local issuer cannot issue a {reward.kind} reward")
        code = reward_code(action_id)
        return IssuedReward(
            provider=self.provider,
            provider_ref=f"local-{code}",
            code=code,
            value_text=reward.value_text(),
            expires_at=expiry_for(reward, self._clock()),
            link=None,
            action_id=action_id,
            kind=reward.kind,
            amount=face_value(reward),
        )

    def find(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward | None:
        return None

    def deactivate(self, issued: IssuedReward) -> None:
        return None
