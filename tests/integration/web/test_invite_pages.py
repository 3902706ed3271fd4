"""``/vip/{token}`` on SQLite and PostgreSQL: a valid invite shows its programme and an
Accept button; accepting records one ``vip_invite_accepted`` event however often it is
pressed; expired, withdrawn, forged and foreign links change nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from delivery.tokens import make_unsubscribe_token
from inbound.invites import ACCEPTED, accepted_event_id
from planning.campaign_files import load_campaign_set
from providers.invites import InvitePayload, sign_invite
from store.reward_tables import record_reward, set_reward_state
from tests.integration.web.service import KEY, NOW, ROOT, Clock, events_of, snapshot

CAMPAIGN = "vip-inner-circle"
PROGRAMME = "the Inner Circle"
EXPIRES = NOW + timedelta(days=30)
ACCEPT = {"action": "accept"}


def invite(member_id: str = "ada", action_id: str = "a1", key: str = KEY) -> str:
    payload = InvitePayload(member_id, CAMPAIGN, PROGRAMME, action_id, EXPIRES)
    return "/vip/" + sign_invite(payload, key)


def test_a_valid_invite_shows_the_programme_and_changes_nothing(
    client: TestClient, engine: sa.Engine
) -> None:
    before = snapshot(engine)
    response = client.get(invite())
    assert response.status_code == 200
    assert "<h1>Your invitation to the Inner Circle</h1>" in response.text
    assert '<button type="submit" class="primary" name="action" value="accept">' in response.text
    assert "open until 21 December 2026 (UTC)" in response.text
    assert "ada" not in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert snapshot(engine) == before


def test_accepting_records_one_event_however_often(client: TestClient, engine: sa.Engine) -> None:
    first = client.post(invite(), data=ACCEPT)
    assert first.status_code == 200
    assert "location" not in first.headers
    assert "you have accepted your invitation to the Inner Circle" in first.text
    expected = [("ada", {"campaign_id": CAMPAIGN, "action_id": "a1", "programme": PROGRAMME})]
    assert events_of(engine, ACCEPTED) == expected
    after = snapshot(engine)
    assert accepted_event_id("a1") in [row[0] for row in after[0]]

    again = client.post(invite(), data=ACCEPT)
    shown = client.get(invite())
    for response in (again, shown):
        assert response.status_code == 200
        assert "You have already accepted this invitation" in response.text
        assert "<button" not in response.text
    assert snapshot(engine) == after
    # Another invite of the same member (another action) is another acceptance.
    client.post(invite(action_id="a2"), data=ACCEPT)
    assert len(events_of(engine, ACCEPTED)) == 2


def test_an_expired_invite_gets_410_and_changes_nothing(
    client: TestClient, engine: sa.Engine, clock: Clock
) -> None:
    clock.now = EXPIRES
    before = snapshot(engine)
    for response in (client.get(invite()), client.post(invite(), data=ACCEPT)):
        assert response.status_code == 410
        assert "This invitation has expired" in response.text
    assert snapshot(engine) == before


def test_an_invite_accepted_in_time_still_says_so_after_it_expired(
    client: TestClient, engine: sa.Engine, clock: Clock
) -> None:
    assert client.post(invite(), data=ACCEPT).status_code == 200
    clock.now = EXPIRES + timedelta(days=1)
    response = client.get(invite())
    assert response.status_code == 200
    assert "You have already accepted this invitation" in response.text
    assert len(events_of(engine, ACCEPTED)) == 1


def test_a_withdrawn_invite_gets_410(client: TestClient, engine: sa.Engine) -> None:
    with engine.begin() as connection:
        pk = connection.execute(sa.text("SELECT id FROM members WHERE member_id = 'ada'")).scalar()
        record_reward(
            connection,
            now=NOW,
            action_id="a1",
            campaign_id=CAMPAIGN,
            member_pk=pk,
            kind="vip_invite",
            provider="invite",
            provider_ref="invite-a1",
            value_text="an invitation",
        )
        set_reward_state(connection, "a1", "deactivated", NOW)
    before = snapshot(engine)
    for response in (client.get(invite()), client.post(invite(), data=ACCEPT)):
        assert response.status_code == 410
        assert "This invitation was withdrawn" in response.text
    assert snapshot(engine) == before


def _forged() -> list[tuple[str, str]]:
    good = invite().removeprefix("/vip/")
    return [
        ("truncated", good[:-6]),
        ("another key", invite(key="another-signing-key-0123456789abcdef").removeprefix("/vip/")),
        ("an unsubscribe token", make_unsubscribe_token(KEY, "ada", CAMPAIGN)),
        ("garbage", "hello"),
    ]


@pytest.mark.parametrize(("case", "token"), _forged(), ids=[c for c, _ in _forged()])
def test_forged_invites_get_400_and_change_nothing(
    client: TestClient, engine: sa.Engine, case: str, token: str
) -> None:
    before = snapshot(engine)
    for response in (client.get(f"/vip/{token}"), client.post(f"/vip/{token}", data=ACCEPT)):
        assert response.status_code == 400, case
        assert "This invitation link is not valid" in response.text
    assert snapshot(engine) == before


def test_a_member_no_longer_on_record_gets_404(client: TestClient, engine: sa.Engine) -> None:
    before = snapshot(engine)
    gone = invite(member_id="gone")
    for response in (client.get(gone), client.post(gone, data=ACCEPT)):
        assert response.status_code == 404
    assert snapshot(engine) == before


def test_a_post_without_the_button_gets_400(client: TestClient, engine: sa.Engine) -> None:
    before = snapshot(engine)
    response = client.post(invite(), data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 400
    assert snapshot(engine) == before


def test_the_vip_campaign_counts_an_acceptance_as_its_response() -> None:
    found = load_campaign_set(ROOT / "campaigns")
    vip = next(c for c in found.campaigns if c.id == CAMPAIGN)
    assert ACCEPTED in vip.response_types
