"""Every shipped campaign's email, rendered as dispatch renders it, with every reward its kind
can bring (from each issuer that gives that kind) and for a member with only an id and an
address: nothing prints as ``None``, no link is empty, no line is left dangling."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from delivery.render import EmailRenderer, RenderedEmail
from delivery.template_context import member_email_context, reward_context
from domain.campaign import Campaign
from planning.campaign_files import load_campaign_set
from providers.gifts import _issued as gift_issued
from providers.invites import InviteIssuer
from providers.local import LocalIssuer
from providers.rewards import IssuedReward, RewardMember

ROOT = Path(__file__).resolve().parents[3]
SETS = [ROOT / "campaigns", *sorted((ROOT / "examples/campaign-sets").iterdir())]
NOW = datetime(2026, 11, 21, 1, 30, tzinfo=UTC)
AS_OF = date(2026, 11, 21)
ZONE = ZoneInfo("America/New_York")
ACTION = "0123456789abcdef0123456789abcdef"
MEMBER = RewardMember(member_pk=1, member_id="m1", email="ada@example.com")
FULL = {
    "member_id": "m1",
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "country": "GB",
    "timezone": "Europe/London",
    "attributes": {"plan": "pro"},
    "stage": "loyalist",
    "score": 61.0,
}
# A member as a minimal members file gives them: no name, country, time zone or stage.
BARE = {"member_id": "m2", "email": "m2@example.com", "attributes": {}}
RENDERER = EmailRenderer(ROOT / "templates" / "email")


def _campaigns() -> list[Campaign]:
    found: dict[tuple[str, str], Campaign] = {}
    for folder in SETS:
        for campaign in load_campaign_set(folder).campaigns:
            kind = campaign.reward.kind if campaign.reward is not None else ""
            found.setdefault((campaign.template, kind), campaign)
    return list(found.values())


def _stripe_shaped(campaign: Campaign) -> IssuedReward | None:
    """What ``providers.stripe_issuer`` returns: a promotion code with its expiry for a
    discount, a balance credit with no code and no expiry for a credit."""
    reward = campaign.reward
    assert reward is not None
    if reward.kind == "discount":
        local = LocalIssuer(clock=lambda: NOW).issue(ACTION, campaign, reward, MEMBER)
        return IssuedReward(
            "stripe",
            "promo_1",
            local.code,
            local.value_text,
            local.expires_at,
            None,
            ACTION,
            "discount",
        )
    if reward.kind == "credit":
        return IssuedReward(
            "stripe", "cbtxn_1", None, reward.value_text(), None, None, ACTION, "credit"
        )
    return None


def issued_rewards(campaign: Campaign) -> list[IssuedReward | None]:
    """Every reward an issuer can give this campaign (``[None]`` without a reward)."""
    reward = campaign.reward
    if reward is None:
        return [None]
    if reward.kind in ("discount", "credit"):
        local = LocalIssuer(clock=lambda: NOW).issue(ACTION, campaign, reward, MEMBER)
        return [local, _stripe_shaped(campaign)]
    if reward.kind == "gift":
        row = SimpleNamespace(
            id=7, item=reward.value_text(), action_id=ACTION, cost_minor=650, currency="USD"
        )
        return [gift_issued(row)]  # type: ignore[arg-type]
    assert reward.kind == "vip_invite"
    invites = InviteIssuer("key", "https://shop.example", clock=lambda: NOW)
    return [invites.issue(ACTION, campaign, reward, MEMBER)]


CASES = [
    pytest.param(campaign, issued, member, id=f"{campaign.id}-{i}-{who}")
    for campaign in _campaigns()
    for i, issued in enumerate(issued_rewards(campaign))
    for who, member in (("full", FULL), ("bare", BARE))
]


def render(
    campaign: Campaign, issued: IssuedReward | None, member: dict[str, object]
) -> RenderedEmail:
    """The email as ``night.dispatcher.Dispatcher._send`` renders it."""
    reward = None
    if issued is not None:
        assert campaign.reward is not None
        reward = reward_context(
            kind=campaign.reward.kind,
            code=issued.code,
            value=issued.value_text,
            expires_at=issued.expires_at,
            link=issued.link,
            zone=ZONE,
        )
    context = member_email_context(
        member=member,
        campaign=campaign,
        reward=reward,
        now=AS_OF,
        base_url="https://shop.example",
        signing_key="key",
    )
    return RENDERER.render_campaign(campaign, context)


@pytest.mark.parametrize(("campaign", "issued", "member"), CASES)
def test_no_email_shows_a_missing_value(
    campaign: Campaign, issued: IssuedReward | None, member: dict[str, object]
) -> None:
    email = render(campaign, issued, member)
    for part in (email.subject, email.html, email.text):
        assert not re.search(r"\bNone\b", part)
    assert not re.search(r'href=(""|"None"|"\s)', email.html)
    # A label with nothing after it ("Your code: "), or an empty line where a value was.
    body = email.text.split("\n--\n")[0]
    assert not re.search(r":[ \t]+$", body, re.MULTILINE), body
    assert "\n\n\n" not in body, body
    assert not re.search(r"<p[^>]*>\s*</p>", email.html)


def test_every_reward_kind_is_covered() -> None:
    kinds = {c.reward.kind for c in _campaigns() if c.reward is not None}
    assert kinds == {"discount", "credit", "gift", "vip_invite"}
    assert any(c.reward is None for c in _campaigns())


def test_only_an_invite_links_to_its_reward() -> None:
    links = {
        campaign.reward.kind: {issued.link for issued in issued_rewards(campaign) if issued}
        for campaign in _campaigns()
        if campaign.reward is not None
    }
    assert links["discount"] == links["credit"] == links["gift"] == {None}
    for campaign in _campaigns():
        if campaign.reward is not None and campaign.reward.kind == "vip_invite":
            (issued,) = issued_rewards(campaign)
            assert issued is not None and issued.link is not None
            assert issued.link.startswith("https://shop.example/vip/")
            email = render(campaign, issued, FULL)
            assert f'href="{issued.link}"' in email.html and issued.link in email.text


def test_the_last_day_shown_is_the_last_day_the_reward_works() -> None:
    # Issued on the 21st for 30 days: it stops at 00:00 UTC on 22 December, which is the
    # evening of the 21st in New York and the end of the 21st in UTC.
    expires = datetime(2026, 12, 22, tzinfo=UTC)
    shown = {
        zone: reward_context(
            kind="discount", code="C", value="v", expires_at=expires, link=None, zone=zone
        )["expires_on"]
        for zone in (ZONE, ZoneInfo("UTC"))
    }
    assert set(shown.values()) == {date(2026, 12, 21)}
