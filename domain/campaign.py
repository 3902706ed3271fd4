"""Compiled campaigns and policy: the values the planner, the store and dispatch work with
(no pydantic, no YAML; ``planning.compile`` builds them from the files)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from audience.criteria import Audience
from nudgeflow.money import Money

# The event an advocate's converted referral is recorded as; its properties name the
# referred member (``referred_member_id``) and the referral (``referral_id``).
REFERRAL_CONVERTED = "referral_converted"
REFERRAL_MADE = "referral_made"

# Email domains anyone can have an address at: two members on one of them are not the same
# company (policy.yaml's ``referrals.public_email_domains`` replaces the list).
DEFAULT_PUBLIC_EMAIL_DOMAINS = frozenset(
    {
        "aol.com",
        # Reserved for examples (RFC 2606): nobody's company, and the demo's addresses.
        "example.com",
        "example.net",
        "example.org",
        "fastmail.com",
        "gmail.com",
        "gmx.com",
        "gmx.de",
        "googlemail.com",
        "hey.com",
        "hotmail.com",
        "icloud.com",
        "live.com",
        "mail.com",
        "mail.ru",
        "me.com",
        "msn.com",
        "outlook.com",
        "proton.me",
        "protonmail.com",
        "qq.com",
        "web.de",
        "yahoo.com",
        "yandex.ru",
        "zoho.com",
    }
)


@dataclass(frozen=True)
class Trigger:
    kind: str  # schedule | stage_entry | event | anniversary | birthday | inactivity
    types: tuple[str, ...] = ()  # event: what fires it; inactivity: what counts as activity
    of: str = "joined_at"  # anniversary: joined_at | first_purchase
    years: int = 1  # anniversary: at least this many years
    for_days: int | None = None  # inactivity: no such event for this long
    direction: str = "up"  # stage_entry: a move up, down, or any move into the stage
    # stage_entry: the lifecycle's stage ids from low to high, which say what "up" means
    stage_order: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reward:
    kind: str  # discount | credit | gift | vip_invite
    cost: Money | None  # what one reward is reserved at
    percent_off: float | None = None
    amount_off: Money | None = None
    amount: Money | None = None
    item: str | None = None
    programme: str | None = None
    expires_in_days: int | None = None

    def describe(self) -> str:
        if self.kind == "discount":
            off = f"{self.percent_off:g}%" if self.percent_off else str(self.amount_off)
            return f"discount {off} off"
        if self.kind == "credit":
            return f"credit {self.amount}"
        if self.kind == "gift":
            return f"gift: {self.item}"
        return f"vip_invite: {self.programme}"

    def value_text(self) -> str:
        """How members read the reward, in every email, preview and provider object:
        ``15% off``, ``10.00 USD off``, ``25.00 USD credit``, the gift's item, the programme."""
        if self.kind == "discount":
            if self.percent_off is not None:
                return f"{self.percent_off:g}% off"
            return f"{self.amount_off} off"
        if self.kind == "credit":
            return f"{self.amount} credit"
        if self.kind == "gift":
            return self.item or "a gift"
        return self.programme or "an invitation"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reward:
        """The reward ``as_dict`` described (as an action stores the terms it was planned
        under); raises ``ValueError`` on a malformed amount."""

        def money(key: str) -> Money | None:
            value = data.get(key)
            return Money.parse(str(value)) if value is not None else None

        def number(key: str) -> float | None:
            value = data.get(key)
            return float(value) if value is not None else None

        days = data.get("expires_in_days")
        return cls(
            kind=str(data["kind"]),
            cost=money("cost"),
            percent_off=number("percent_off"),
            amount_off=money("amount_off"),
            amount=money("amount"),
            item=str(data["item"]) if data.get("item") is not None else None,
            programme=str(data["programme"]) if data.get("programme") is not None else None,
            expires_in_days=int(days) if days is not None else None,
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "percent_off": self.percent_off,
            "amount_off": str(self.amount_off) if self.amount_off else None,
            "amount": str(self.amount) if self.amount else None,
            "item": self.item,
            "programme": self.programme,
            "expires_in_days": self.expires_in_days,
            "cost": str(self.cost) if self.cost else None,
        }


@dataclass(frozen=True)
class Budget:
    total: Money | None
    per_month: Money | None

    @property
    def currency(self) -> str:
        money = self.total or self.per_month
        assert money is not None
        return money.currency


@dataclass(frozen=True)
class Variant:
    """One arm of an A/B/n test: what differs from the campaign's email, and its share."""

    id: str
    template: str
    subject: str
    weight: float


@dataclass(frozen=True)
class Campaign:
    id: str
    name: str
    source: str  # the file it came from, for messages
    enabled: bool
    priority: int
    audience: Audience
    trigger: Trigger
    once_per_member: bool
    cooldown_days: int | None
    holdout_percent: float  # 0 when there is no control group
    holdout_salt: str
    max_per_run: int | None
    reward: Reward | None
    budget: Budget | None
    template: str
    subject: str
    response_types: tuple[str, ...]
    response_within_days: int
    owner: str | None = None
    # What kind of nudge it is (policy.yaml's categories): members may leave a category in
    # the preference centre. None: in no category, so only consent and pauses apply.
    category: str | None = None
    # A/B/n variants (none: one email for everyone). Members who are not held out are
    # assigned one by ``planning.planner.variant_for``.
    variants: tuple[Variant, ...] = ()
    # A seasonal campaign runs only on the business dates from starts_on to ends_on, both
    # included (None: no limit on that side).
    starts_on: date | None = None
    ends_on: date | None = None
    # A referral campaign (``is_referral``): at most this many rewarded referrals per
    # advocate in any window of ``per_days`` (None: no limit).
    referral_limit: FrequencyCap | None = None

    def in_season(self, as_of: date) -> bool:
        """Whether business date ``as_of`` is inside ``starts_on``..``ends_on``."""
        if self.starts_on is not None and as_of < self.starts_on:
            return False
        return self.ends_on is None or as_of <= self.ends_on

    @property
    def is_referral(self) -> bool:
        """A campaign fired by converted referrals: the referral-fraud guards apply."""
        return self.trigger.kind == "event" and REFERRAL_CONVERTED in self.trigger.types

    # Rewards costing more than this wait in ``awaiting_approval`` (the campaign file's
    # ``approval_above``, else policy.yaml's: ``CampaignSet`` applies the policy's).
    approval_above: Money | None = None

    def needs_approval(self, cost: Money) -> bool:
        """Whether a reward of this cost waits for a person's approval: it costs more than
        ``approval_above`` (a cost in another currency than the threshold always waits:
        validation refuses such files, so only a hand-made value gets here)."""
        threshold = self.approval_above
        if threshold is None:
            return False
        if cost.currency != threshold.currency:
            return True
        return cost.amount_minor > threshold.amount_minor

    def variant(self, variant_id: str | None) -> Variant | None:
        """The variant with this id, if the campaign still has it."""
        return next((v for v in self.variants if v.id == variant_id), None)

    @property
    def occurrence_kind(self) -> str:
        """What makes two sends to one member different occurrences:
        ``year`` for birthdays and anniversaries, ``once``, or ``date`` (cooldown and the rest).
        """
        if self.trigger.kind in ("birthday", "anniversary"):
            return "year"
        return "once" if self.once_per_member else "date"


@dataclass(frozen=True)
class FrequencyCap:
    max: int
    per_days: int


@dataclass(frozen=True)
class Policy:
    frequency_caps: tuple[FrequencyCap, ...]
    unanswered_nudges: int
    fatigue_tag: str
    rest_days: int
    send_start: str
    send_end: str
    send_timezone: str
    # The categories campaigns may name, in the order the preference centre lists them.
    categories: tuple[str, ...] = ()
    # Referral guards: a shared email domain is a self-referral unless it is one of these.
    public_email_domains: frozenset[str] = DEFAULT_PUBLIC_EMAIL_DOMAINS
    # Rewards costing more than this wait for approval unless a campaign sets its own;
    # an undecided approval expires after ``approval_expires_days``.
    approval_above: Money | None = None
    approval_expires_days: int = 7
