"""The template context: the names and keys an email template may use, and how they are
filled for a real member (with signed links) or a plausible sample one (for ``validate`` and
``preview``).

A value the data does not have (``None``: a member without a first name, a gift's code) is
never printed as ``None``: ``template_view`` shows it to templates as ``Missing``, which is
false in ``{% if %}`` and prints as nothing. ``validate`` renders with ``MissingValue``
instead, which fails where a template prints it, so the template file and line are reported.
What each reward kind carries is ``REWARD_KEYS`` (the table in docs/email.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from jinja2 import Undefined
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
    "reward": ("kind", "code", "value", "expires_at", "expires_on", "link"),
    "links": ("unsubscribe", "preferences"),
    "now": None,  # a date: its attributes (year, month…) and methods are Python's
}


# What each kind of reward brings to its email, whichever provider issues it: the keys it
# always has, and the keys it has only sometimes. A key in neither is always missing.
# - discount: the promotion code; an expiry when the campaign sets expires_in. No link: the
#   code is entered at the shop's checkout.
# - credit: on the member's account. The local issuer also gives a code and an expiry; a
#   Stripe balance credit has neither.
# - gift: shipped by the team; no code, no link, no expiry.
# - vip_invite: the signed invite link, which always expires; no code.
REWARD_KEYS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "discount": (frozenset({"kind", "code", "value"}), frozenset({"expires_at", "expires_on"})),
    "credit": (frozenset({"kind", "value"}), frozenset({"code", "expires_at", "expires_on"})),
    "gift": (frozenset({"kind", "value"}), frozenset()),
    "vip_invite": (frozenset({"kind", "value", "link", "expires_at", "expires_on"}), frozenset()),
}
# An invite whose campaign sets no expires_in still expires (providers.invites.DEFAULT_DAYS).
INVITE_DAYS = 30


class Missing(Undefined):
    """A value the data does not have, as templates see it: false in ``{% if %}``, nothing
    when printed, undefined to the ``default`` filter and the ``defined`` test."""

    __slots__ = ()


class MissingValue(Missing):
    """``validate``'s ``Missing``: printing it fails with its name and what to do, located
    at the template's file and line."""

    __slots__ = ()
    __str__ = __iter__ = __len__ = __format__ = Undefined._fail_with_undefined_error


def _missing_as(
    values: Mapping[str, Any], path: str, whose: str, missing: type[Missing]
) -> dict[str, Any]:
    return {
        key: missing(
            f"{path}.{key} has no value for {whose}: show it inside "
            f"{{% if {path}.{key} %}}…{{% endif %}}"
        )
        if value is None
        else value
        for key, value in values.items()
    }


def template_view(context: Mapping[str, Any], *, strict: bool = False) -> dict[str, Any]:
    """``context`` as templates see it: every ``None`` of ``member``, its attributes and
    ``reward`` is ``Missing`` (``MissingValue`` when ``strict``). ``reward`` itself stays
    ``None`` for a campaign without one."""
    missing = MissingValue if strict else Missing
    view = dict(context)
    member = context.get("member")
    if isinstance(member, Mapping):
        view["member"] = _missing_as(member, "member", "this member", missing)
        attributes = member.get("attributes")
        if isinstance(attributes, Mapping):
            shown = _missing_as(attributes, "member.attributes", "this member", missing)
            view["member"]["attributes"] = shown
    reward = context.get("reward")
    if isinstance(reward, Mapping):
        whose = f"a {reward.get('kind') or 'this'} reward"
        view["reward"] = _missing_as(reward, "reward", whose, missing)
    return view


def reward_context(
    *,
    kind: str,
    code: str | None,
    value: str,
    expires_at: datetime | None,
    link: str | None,
    zone: tzinfo,
) -> dict[str, Any]:
    """The ``reward`` of an email: an issued reward's code, value, expiry and link, the
    expiry also as ``expires_on``, the last day (in the business time zone) it can be used.

    A reward expires at midnight ending its last day, so that day is the one before the
    instant ``expires_at``: "Use it by December 21" for a reward that stops at 00:00 on
    December 22.
    """
    last_day = None
    if expires_at is not None:
        last_day = (expires_at - timedelta(microseconds=1)).astimezone(zone).date()
    return {
        "kind": kind,
        "code": code,
        "value": value,
        "expires_at": expires_at,
        "expires_on": last_day,
        "link": link,
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


def sample_reward(
    campaign: Campaign, now: date, base_url: str, *, sparse: bool = False
) -> dict[str, Any] | None:
    """A reward of the campaign's kind as an email gets it: with every key the kind can
    have, or only those it always has when ``sparse`` (``REWARD_KEYS``)."""
    r = campaign.reward
    if r is None:
        return None
    always, sometimes = REWARD_KEYS.get(r.kind, (frozenset({"kind", "value"}), frozenset()))
    has = always if sparse else always | sometimes
    days = r.expires_in_days or (INVITE_DAYS if r.kind == "vip_invite" else None)
    expires = None
    if days and "expires_at" in has:
        expires = datetime.combine(now + timedelta(days=days + 1), time(0), tzinfo=UTC)
    return reward_context(
        kind=r.kind,
        code="THANKS-7Q4M2" if "code" in has else None,
        value=r.value_text(),
        expires_at=expires,
        link=f"{base_url}/vip/sample-invite" if "link" in has else None,
        zone=UTC,
    )


def sample_context(
    campaign: Campaign,
    as_of: date | None = None,
    base_url: str = "https://example.com",
    *,
    sparse: bool = False,
) -> dict[str, Any]:
    """A plausible member and reward for ``campaign``: what ``validate`` and ``preview``
    render against (``sparse``: the reward has only the keys its kind always has)."""
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
    reward = sample_reward(campaign, now, base_url, sparse=sparse)
    links = {
        "unsubscribe": f"{base_url}/unsubscribe/sample-token",
        "preferences": f"{base_url}/preferences/sample-token",
    }
    return email_context(member=member, campaign=campaign, reward=reward, links=links, now=now)


def sample_contexts(
    campaign: Campaign, as_of: date | None = None, base_url: str = "https://example.com"
) -> list[dict[str, Any]]:
    """Every sample ``validate`` renders a campaign's email with: its reward with every key
    its kind can have and with only those it always has; one context without a reward."""
    contexts = [sample_context(campaign, as_of, base_url)]
    if campaign.reward is not None:
        contexts.append(sample_context(campaign, as_of, base_url, sparse=True))
    return contexts
