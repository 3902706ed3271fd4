"""Settling an action for good, outside the happy path of a batch: failing it (its reward
withdrawn and its reservation voided), spending a sent reward in the ledger, and resolving an
``unknown`` action after an operator checked the provider."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from domain.campaign import Campaign, Reward
from nudgeflow.errors import DeliveryError, RewardError
from nudgeflow.money import Money
from providers.rewards import IssuedReward, RewardIssuer, RewardMember, issued_from_row
from store import ledger, outbox
from store.outbox import OutboxAction
from store.reward_tables import get_reward, set_reward_state

# Rewards the ledger counts as spent once their email has gone (the face value or the
# programme cost); discounts are spent when redeemed, gifts when shipped.
SPENT_WHEN_SENT = ("credit", "vip_invite")


def planned_terms(campaign: Campaign, action: OutboxAction) -> Campaign:
    """The campaign as the action was planned under it: the reward (kind, amounts, cost,
    expiry) and the template stored with the action (its variant's, with variants), with
    its variant's subject line while the file still has the variant. Dispatch issues and
    renders these, so a file edited between planning and a retried dispatch never changes
    what the ledger reserved or what the member is promised."""
    reward = Reward.from_dict(action.reward) if action.reward else None
    variant = campaign.variant(action.variant)
    subject = variant.subject if variant is not None else campaign.subject
    return replace(campaign, reward=reward, template=action.template, subject=subject)


def draws_on_budget(campaign: Campaign, action: OutboxAction) -> bool:
    """Whether the action's reward was planned against a budget (actions stored before this
    was recorded follow the campaign file)."""
    budgeted = (action.reward or {}).get("budgeted")
    return bool(budgeted) if budgeted is not None else campaign.budget is not None


def consent_lost(preference: str | None) -> str:
    """Why an action is failed instead of sent: consent (``OutboxAction.consent``) was lost
    since planning, by email consent withdrawn or by a preference (``preference``)."""
    if preference == "paused":
        return "the member paused all nudges in the preference centre since planning"
    if preference is not None:
        category = preference.removeprefix("category:")
        return f"the member unsubscribed from {category} in the preference centre since planning"
    return "consent withdrawn since planning (unsubscribed, bounced or opted out)"


def reward_member(action: OutboxAction) -> RewardMember:
    """The member as the reward issuers see them."""
    m = action.member
    attributes = {str(k): str(v) for k, v in m["attributes"].items() if v is not None}
    if m["country"] and "country" not in attributes:
        attributes["country"] = m["country"]
    return RewardMember(
        member_pk=action.member_pk,
        member_id=m["member_id"],
        email=m["email"],
        first_name=m["first_name"],
        last_name=m["last_name"],
        stripe_customer_id=m["stripe_customer_id"],
        attributes=attributes,
    )


def spend(connection: Connection, action_id: str, cost: Money, now: datetime, as_of: date) -> None:
    """Outstanding → spent at the reward's cost (credits and invites, once their email went)."""
    ledger.redeem(connection, action_id, cost, None, business_date=as_of, now=now)
    set_reward_state(connection, action_id, "redeemed", now)


def issued_reward(
    engine: Engine, issuer: RewardIssuer, action: OutboxAction, campaign: Campaign | None
) -> IssuedReward | None:
    """The reward an earlier pass may have issued for an action that now fails before its
    email (so that it is withdrawn, not left usable): the local record, else the provider
    searched by action id. None when there is none; ``RewardError`` when the provider
    cannot be asked."""
    if action.state not in ("reserved", "reward_issued", "unknown"):
        return None
    if campaign is not None and campaign.reward is not None:
        member = reward_member(action)
        return issuer.find(action.action_id, campaign, campaign.reward, member)
    with engine.connect() as connection:
        row = get_reward(connection, action.action_id)
    return issued_from_row(row) if row is not None else None


def fail_action(
    engine: Engine,
    issuer: RewardIssuer,
    action: OutboxAction,
    reason: str,
    issued: IssuedReward | None,
    now: datetime,
    as_of: date,
    *,
    from_states: Sequence[str] = outbox.PENDING,
    turn: AbstractContextManager[Any] | None = None,
) -> None:
    """Fail an action for good: withdraw its reward (if one was issued), void its
    reservation and record the reason, the last two in one ledger transaction (taken in
    ``turn``, the dispatcher's writer turn, when given)."""
    if issued is not None:
        try:
            issuer.deactivate(issued)
        except RewardError as exc:
            reason = f"{reason}; withdrawing the reward failed too ({exc}): withdraw it by hand"
    with turn or nullcontext(), ledger.ledger_transaction(engine) as connection:
        # Release what is still held: nothing when it failed before its reservation.
        if ledger.reward_state(connection, action.action_id) in ("reserved", "outstanding"):
            ledger.void(connection, action.action_id, reason, business_date=as_of, now=now)
        outbox.move(connection, action.action_id, from_states, "failed", now, reason=reason)


def resolve_unknown(
    engine: Engine,
    issuer: RewardIssuer,
    campaigns: Mapping[str, Campaign],
    action_id: str,
    *,
    sent: bool,
    now: datetime,
    signing_key: str,
) -> str:
    """Settle an ``unknown`` action after checking the provider: ``sent`` records it as sent
    (credits and invites are then spent); otherwise it fails, its reward is withdrawn and
    its reservation voided. Returns the new state; ``DispatchError`` explains a refusal."""
    with engine.connect() as connection:
        loaded = outbox.load(connection, [action_id], now=now)
    if not loaded:
        raise ResolveError(f"no action {action_id}")
    action = loaded[0]
    if action.state != "unknown":
        raise ResolveError(f"action {action_id} is {action.state}, not unknown: nothing to resolve")
    current = campaigns.get(action.campaign_id)
    campaign = planned_terms(current, action) if current is not None else None
    reward = campaign.reward if campaign is not None else action_reward_kind(action)
    if sent:
        with ledger.ledger_transaction(engine) as connection:
            outbox.move(
                connection,
                action_id,
                ("unknown",),
                "sent",
                now,
                reason="resolved as sent by an operator",
            )
            if reward is not None and action.currency is not None:
                kind = reward if isinstance(reward, str) else reward.kind
                if kind in SPENT_WHEN_SENT:
                    cost = Money(action.cost_minor, action.currency)
                    spend(connection, action_id, cost, now, action.as_of)
        return "sent"
    fail_action(
        engine,
        issuer,
        action,
        "resolved as not sent by an operator",
        issued_reward(engine, issuer, action, campaign),
        now,
        action.as_of,
        from_states=("unknown",),
    )
    return "failed"


def action_reward_kind(action: OutboxAction) -> str | None:
    """The reward kind stored with the action (when its campaign file is gone)."""
    kind = (action.reward or {}).get("kind")
    return str(kind) if kind is not None else None


class ResolveError(DeliveryError):
    """The action cannot be resolved (not found, or not ``unknown``)."""

    exit_code = 1
