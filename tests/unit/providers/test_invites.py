"""VIP invite links: signed, expiring, tamper-evident."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from freezegun import freeze_time

from domain.campaign import Reward
from nudgeflow.money import Money
from providers.invites import InvalidInvite, InviteIssuer, verify_invite
from providers.issuers import RewardMember
from tests.unit.providers.test_issuers_local import CAMPAIGN

KEY = "test-signing-key"
NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)
VIP = Reward("vip_invite", Money(0, "USD"), programme="inner-circle", expires_in_days=14)
MEMBER = RewardMember(member_pk=7, member_id="m7")


def _token(reward: Reward = VIP) -> str:
    issuer = InviteIssuer(KEY, "https://example.com/", clock=lambda: NOW)
    issued = issuer.issue("a" * 32, CAMPAIGN, reward, MEMBER)
    assert issued.link is not None
    url = urlsplit(issued.link)
    assert (url.scheme, url.netloc) == ("https", "example.com")
    assert url.path.startswith("/vip/")
    return url.path.removeprefix("/vip/")


def test_a_fresh_invite_verifies() -> None:
    with freeze_time(NOW + timedelta(days=1)):
        payload = verify_invite(_token(), KEY)
    assert payload.member_id == "m7"
    assert payload.campaign_id == CAMPAIGN.id
    assert payload.programme == "inner-circle"
    assert payload.action_id == "a" * 32
    assert payload.expires_at == datetime(2026, 3, 25, tzinfo=UTC)


def test_an_invite_expires() -> None:
    token = _token()
    with pytest.raises(InvalidInvite, match="expired"):
        verify_invite(token, KEY, now=datetime(2026, 3, 25, tzinfo=UTC))


def test_max_age_can_be_stricter() -> None:
    with freeze_time(NOW):
        signed = _token()  # itsdangerous stamps the signing time
    with freeze_time(NOW + timedelta(hours=2)), pytest.raises(InvalidInvite, match="expired"):
        verify_invite(signed, KEY, max_age=timedelta(hours=1))


def test_tampered_or_foreign_tokens_are_refused() -> None:
    token = _token()
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(InvalidInvite, match="not valid"):
        verify_invite(flipped, KEY, now=NOW)
    with pytest.raises(InvalidInvite, match="not valid"):
        verify_invite(token, "another-key", now=NOW)
    with pytest.raises(InvalidInvite, match="not valid"):
        verify_invite("garbage", KEY, now=NOW)


def test_invites_without_expiry_still_expire() -> None:
    token = _token(replace(VIP, expires_in_days=None))
    assert verify_invite(token, KEY, now=NOW + timedelta(days=29))
    with pytest.raises(InvalidInvite, match="expired"):
        verify_invite(token, KEY, now=NOW + timedelta(days=31))
