"""The template context: the names and keys an email template may use, and how they are
filled for a real member (with signed links) or a plausible sample one (for ``validate`` and
``preview``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from pydantic import SecretStr

from audience.rules import AllOf, AnyOf, Attribute, Rule
from delivery.tokens import member_links
from domain.campaign import Campaign

# The template context. Templates may use exactly these names and keys.
CONTEXT_KEYS: dict[str, tuple[str, ...] | None] = {
    "member": (
        "member_id",
        "email",
        "first_name",
        "last_name",
        "country",
        "timezone",
        "attributes",
        "stage",
        "score",
    ),
    "campaign": ("id", "name"),
    "reward": ("kind", "code", "value", "expires_on", "link"),
    "links": ("unsubscribe", "preferences"),
    "now": None,  # a date: its attributes (year, month…) and methods are Python's
}


def email_context(
    *,
    member: Mapping[str, Any],
    campaign: Campaign,
    reward: Mapping[str, Any] | None,
    links: Mapping[str, str],
    now: date,
) -> dict[str, Any]:
    """The context every template is rendered with."""
    return {
        "member": {key: member.get(key) for key in CONTEXT_KEYS["member"] or ()}
        | {"attributes": dict(member.get("attributes") or {})},
        "campaign": {"id": campaign.id, "name": campaign.name},
        "reward": dict(reward) if reward is not None else None,
        "links": {"unsubscribe": links["unsubscribe"], "preferences": links["preferences"]},
        "now": now,
    }


def member_email_context(
    *,
    member: Mapping[str, Any],
    campaign: Campaign,
    reward: Mapping[str, Any] | None,
    now: date,
    base_url: str,
    signing_key: str | SecretStr,
) -> dict[str, Any]:
    """The context for a real member: ``links`` hold their signed unsubscribe and
    preferences links (``member["member_id"]`` and the campaign id are in the token)."""
    links = member_links(base_url, signing_key, str(member["member_id"]), campaign.id)
    return email_context(member=member, campaign=campaign, reward=reward, links=links, now=now)


def _sample_attributes(campaign: Campaign) -> dict[str, str]:
    """A value for each attribute the audience tests with ``in``, so templates may use it."""
    found: dict[str, str] = {}

    def walk(rule: Rule) -> None:
        match rule:
            case Attribute(name=name, op="in", values=values) if values:
                found.setdefault(name, values[0])
            case AllOf(rules=rules) | AnyOf(rules=rules):
                for inner in rules:
                    walk(inner)

    walk(campaign.audience.rule)
    for column in ("country", "timezone", "email", "first_name", "last_name"):
        found.pop(column, None)
    return found


def sample_context(
    campaign: Campaign, as_of: date | None = None, base_url: str = "https://example.com"
) -> dict[str, Any]:
    """A plausible member and reward for ``campaign``: what ``validate`` renders against."""
    now = as_of or date.today()
    stages = campaign.audience.stages
    score = campaign.audience.score_min
    member = {
        "member_id": "sample-0001",
        "email": "ada.lovelace@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "country": "GB",
        "timezone": "Europe/London",
        "attributes": _sample_attributes(campaign),
        "stage": stages[0] if stages else None,
        "score": float(score) + 10.0 if score is not None else 42.0,
    }
    reward = None
    if campaign.reward is not None:
        r = campaign.reward
        code = "THANKS-7Q4M2" if r.kind in ("discount", "credit") else None
        days = r.expires_in_days
        reward = {
            "kind": r.kind,
            "code": code,
            "value": r.value_text(),
            "expires_on": now + timedelta(days=days) if days else None,
            "link": f"{base_url}/r/{code or 'sample-invite'}",
        }
    links = {
        "unsubscribe": f"{base_url}/unsubscribe/sample-token",
        "preferences": f"{base_url}/preferences/sample-token",
    }
    return email_context(member=member, campaign=campaign, reward=reward, links=links, now=now)
