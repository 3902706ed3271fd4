"""VIP invites opened and accepted: what ``GET`` and ``POST /vip/{token}`` do.

The invite's signature (``providers.invites.verify_invite``) proves who it is for, which
campaign sent it and which programme it opens, until it expires. Accepting records one
``vip_invite_accepted`` event for the member, its id derived from the invite's action, so a
second press, a reload or a race between two tabs adds nothing. The event is a response like
a click: a campaign lists it in ``response.counts_as`` for fatigue and impact.

An invite whose reward the night withdrew (its action failed: ``rewards.state`` is
``deactivated``) can no longer be accepted; a genuine invite accepted before it expired
still says so afterwards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from nudgeflow.errors import NotFoundError
from nudgeflow.timeutil import to_epoch
from providers.invites import InviteExpired, InvitePayload, verify_invite
from store.reward_tables import get_reward
from store.schema import events, members

ACCEPTED = "vip_invite_accepted"
_LONG_AGO = datetime(1970, 1, 2, tzinfo=UTC)  # "now" for reading an expired invite's payload


class InviteWithdrawn(InviteExpired):
    """The invite is genuine, but its reward was deactivated: it can no longer be accepted."""


@dataclass(frozen=True)
class InviteState:
    """An invite and whether it has been accepted (``just_now``: by this very request)."""

    invite: InvitePayload
    accepted: bool
    just_now: bool = False


def accepted_event_id(action_id: str) -> str:
    """The id of the acceptance event: one per invite (one invite per action)."""
    return "nudgeflow-vip-accepted-" + hashlib.sha256(action_id.encode()).hexdigest()[:32]


def _was_accepted(connection: Connection, invite: InvitePayload) -> bool:
    found = connection.execute(
        select(events.c.id).where(events.c.event_id == accepted_event_id(invite.action_id))
    ).first()
    return found is not None


def _member_pk(connection: Connection, invite: InvitePayload) -> int:
    pk = connection.execute(
        select(members.c.id).where(members.c.member_id == invite.member_id)
    ).scalar_one_or_none()
    if pk is None:
        raise NotFoundError("this invite belongs to a member who is no longer on record")
    return int(pk)


def _read(connection: Connection, token: str, key: str, now: datetime) -> InviteState:
    try:
        invite = verify_invite(token, key, now=now)
    except InviteExpired:
        # Genuine but late (the signature was checked before the expiry): an invite accepted
        # in time still shows as accepted.
        late = verify_invite(token, key, now=_LONG_AGO)
        if _was_accepted(connection, late):
            return InviteState(late, accepted=True)
        raise
    _member_pk(connection, invite)
    if _was_accepted(connection, invite):
        return InviteState(invite, accepted=True)
    reward = get_reward(connection, invite.action_id)
    if reward is not None and reward.state == "deactivated":
        raise InviteWithdrawn("this invitation was withdrawn")
    return InviteState(invite, accepted=False)


def open_invite(engine: Engine, token: str, key: str, *, now: datetime) -> InviteState:
    """The invite behind ``token`` as of ``now``, read only. Raises ``InvalidInvite`` (forged
    or damaged), ``InviteExpired`` (late, or withdrawn) or ``NotFoundError`` (member gone)."""
    with engine.connect() as connection:
        return _read(connection, token, key, now)


def accept_invite(engine: Engine, token: str, key: str, *, at: datetime) -> InviteState:
    """Accept the invite at ``at``: one ``vip_invite_accepted`` event, however often asked."""
    with engine.begin() as connection:
        state = _read(connection, token, key, at)
        if state.accepted:
            return state
        invite = state.invite
        dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
        inserted = connection.execute(
            dialect.insert(events)
            .values(
                event_id=accepted_event_id(invite.action_id),
                member_pk=_member_pk(connection, invite),
                type=ACCEPTED,
                occurred_at=to_epoch(at),
                properties={
                    "campaign_id": invite.campaign_id,
                    "action_id": invite.action_id,
                    "programme": invite.programme,
                },
            )
            # Two tabs pressing Accept at once: the second insert finds the first.
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(events.c.id)
        ).first()
        return InviteState(invite, accepted=True, just_now=inserted is not None)
