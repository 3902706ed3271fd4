"""The issuer dispatch holds: it routes each reward kind to its provider and records every
reward issued in the ``rewards`` table, which the redemption sync, expiry and
``ledger reconcile`` read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from domain.campaign import Campaign, Reward
from nudgeflow.errors import RewardError
from providers.rewards import (
    Clock,
    IssuedReward,
    RewardIssuer,
    RewardMember,
    coupon_id,
    face_value,
    issued_from_row,
    utc_now,
)
from store import reward_tables
from store.engine import write_transaction


def member_from_row(row: sa.Row[Any]) -> RewardMember:
    """The member as issuers see them, from a ``members`` row."""
    m = row._mapping
    attributes = {str(k): str(v) for k, v in (m["attributes"] or {}).items() if v is not None}
    if m["country"] and "country" not in attributes:
        attributes["country"] = m["country"]
    return RewardMember(
        member_pk=m["id"],
        member_id=m["member_id"],
        email=m["email"],
        first_name=m["first_name"],
        last_name=m["last_name"],
        stripe_customer_id=m["stripe_customer_id"],
        attributes=attributes,
    )


class RecordingIssuer:
    """Routes each reward kind to its provider and records what was issued.

    The ``rewards`` row is the local truth: a second ``issue`` for the action returns it
    without asking the provider, and the sync, expiry and reconcile steps read it.
    """

    def __init__(
        self,
        engine: sa.Engine,
        providers: Mapping[str, RewardIssuer],
        clock: Clock = utc_now,
    ) -> None:
        self.engine = engine
        self.providers = dict(providers)
        self._clock = clock

    def _provider(self, kind: str) -> RewardIssuer:
        try:
            return self.providers[kind]
        except KeyError:
            raise RewardError(f"no issuer for {kind} rewards") from None

    def issue(
        self,
        action_id: str,
        campaign: Campaign,
        reward: Reward,
        member: RewardMember,
        *,
        first_attempt: bool = False,
    ) -> IssuedReward:
        if not first_attempt:  # a first attempt has no record yet: no query
            with self.engine.connect() as connection:
                row = reward_tables.get_reward(connection, action_id)
            if row is not None:
                if row.state == "deactivated":
                    raise RewardError(f"the reward for action {action_id} was withdrawn")
                return issued_from_row(row)
        issued = self._provider(reward.kind).issue(
            action_id, campaign, reward, member, first_attempt=first_attempt
        )
        self._record(campaign, reward, member, issued)
        return issued

    def find(
        self, action_id: str, campaign: Campaign, reward: Reward, member: RewardMember
    ) -> IssuedReward | None:
        with self.engine.connect() as connection:
            row = reward_tables.get_reward(connection, action_id)
        if row is not None:
            return issued_from_row(row)
        issued = self._provider(reward.kind).find(action_id, campaign, reward, member)
        if issued is not None:
            self._record(campaign, reward, member, issued)
        return issued

    def deactivate(self, issued: IssuedReward) -> None:
        self._provider(issued.kind).deactivate(issued)
        with write_transaction(self.engine) as connection:
            reward_tables.set_reward_state(
                connection, issued.action_id, "deactivated", self._clock()
            )

    def _record(
        self, campaign: Campaign, reward: Reward, member: RewardMember, issued: IssuedReward
    ) -> None:
        money = face_value(reward) or reward.cost
        coupon = coupon_id(campaign, reward) if issued.provider == "stripe" else None
        with write_transaction(self.engine) as connection:
            reward_tables.record_reward(
                connection,
                action_id=issued.action_id,
                campaign_id=campaign.id,
                member_pk=member.member_pk,
                kind=reward.kind,
                provider=issued.provider,
                provider_ref=issued.provider_ref,
                code=issued.code,
                value_text=issued.value_text,
                amount_minor=money.amount_minor if money else None,
                percent_off=reward.percent_off,
                currency=money.currency if money else None,
                customer=issued.customer,
                coupon_id=coupon,
                link=issued.link,
                expires_at=int(issued.expires_at.timestamp()) if issued.expires_at else None,
                now=self._clock(),
            )

    def close(self) -> None:
        for provider in self.providers.values():
            close = getattr(provider, "close", None)
            if close is not None:
                close()
