"""Hostile referral data in the store, on SQLite and PostgreSQL: ``store.referral_facts``
gathers tonight's conversions set-based (both sides' rows, first purchases, when each
referral began, earlier rewards), and the planner refuses each kind of fraud with its
reason while a real referral is rewarded."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from domain.campaign import FrequencyCap, Policy, Trigger
from domain.plan import MemberState, NightInput, ReferralLimit, ReferralRefused
from nudgeflow.timeutil import day_end, to_epoch
from planning.planner import FixedBudgets, plan_night
from store.referral_facts import gather_referrals
from store.schema import actions, events, members
from tests.campaigns import make_campaign
from tests.integration.dispatch_rows import action

ZONE = ZoneInfo("UTC")
NIGHT = date(2026, 11, 20)
PREVIOUS = NIGHT - timedelta(days=1)
POLICY = Policy((), 3, "nudge-fatigued", 90, "09:00", "18:00", "member")
REFERRAL = make_campaign(
    "referral-bonus",
    trigger=Trigger("event", types=("referral_converted",)),
    once_per_member=False,
    referral_limit=FrequencyCap(3, 30),
)
_NOW = datetime(2026, 1, 1)

# member_id → (email, Stripe customer)
PEOPLE: dict[str, tuple[str, str | None]] = {
    "self": ("self@example.org", None),
    "gmail": ("jane.doe@gmail.com", None),
    "gmail-alias": (" Jane.D.o.e+friends@GoogleMail.com", None),  # jane.doe's second account
    "stripe": ("one@example.org", "cus_shared"),
    "stripe-alias": ("two@example.net", "cus_shared"),
    "boss": ("boss@acme.io", None),
    "colleague": ("colleague@ACME.io", None),
    "old-hand": ("old@example.org", None),
    "old-customer": ("customer@example.net", None),  # bought before being referred
    "lazy": ("lazy@example.org", None),
    "browser": ("browser@example.net", None),  # never bought
    "burst": ("burst@example.org", None),  # already rewarded 3 times this month
    "burst-friend": ("friend@example.com", None),
    "honest": ("honest@gmail.com", "cus_h"),
    "newcomer": ("newcomer@gmail.com", "cus_n"),  # a public domain shared: fine
    "ghost-referrer": ("ghost@example.org", None),
}
# advocate → (referred member_id named by the conversion, referral id)
CONVERSIONS = {
    "self": ("self", "r-self"),
    "gmail": ("gmail-alias", "r-gmail"),
    "stripe": ("stripe-alias", "r-stripe"),
    "boss": ("colleague", "r-boss"),
    "old-hand": ("old-customer", "r-old"),
    "lazy": ("browser", "r-lazy"),
    "burst": ("burst-friend", "r-burst"),
    "honest": ("newcomer", "r-honest"),
    "ghost-referrer": ("nobody-we-know", "r-ghost"),
}
EXPECTED = {
    "self": "self_referral",
    "gmail": "self_referral",
    "stripe": "self_referral",
    "boss": "self_referral",
    "old-hand": "referral_existing_customer",
    "lazy": "referral_unconverted",
    "burst": "referral_velocity",
    "honest": "selected",
    "ghost-referrer": "referral_unconverted",
}


def _at(day: date, hour: int) -> int:
    return to_epoch(datetime(day.year, day.month, day.day, hour, tzinfo=UTC))


def _world(connection: sa.Connection) -> dict[str, int]:
    keys: dict[str, int] = {}
    for member_id, (email, customer) in PEOPLE.items():
        result = connection.execute(
            sa.insert(members).values(
                member_id=member_id,
                email=email,
                stripe_customer_id=customer,
                joined_at=_at(date(2026, 1, 5), 12),
                email_opt_in=True,
                row_hash="-",
                created_at=_NOW,
                updated_at=_NOW,
            )
        )
        assert result.inserted_primary_key is not None
        keys[member_id] = int(result.inserted_primary_key[0])
    rows: list[dict[str, Any]] = []

    def event(member_id: str, kind: str, at: int, **properties: str) -> None:
        rows.append(
            {
                "event_id": f"e{len(rows)}",
                "member_pk": keys[member_id],
                "type": kind,
                "occurred_at": at,
                "properties": properties or None,
            }
        )

    made = _at(date(2026, 11, 1), 10)
    for advocate, (referred, referral_id) in CONVERSIONS.items():
        event(advocate, "referral_made", made, referral_id=referral_id)
        event(advocate, "referral_converted", _at(NIGHT, 15), referral_id=referral_id,
              referred_member_id=referred)  # fmt: skip
        if referred in keys and referred != "browser":
            event(referred, "purchase", _at(NIGHT, 14))
    event("old-customer", "purchase", _at(date(2026, 3, 1), 9))  # long before the referral
    # A conversion from before tonight's window does not count again.
    event("lazy", "referral_converted", _at(PREVIOUS, 9), referral_id="r-older",
          referred_member_id="newcomer")  # fmt: skip
    connection.execute(sa.insert(events), rows)
    connection.execute(
        sa.insert(actions),
        [action(keys, REFERRAL.id, "burst", NIGHT - timedelta(days=d), "sent") for d in (2, 9, 20)]
        + [action(keys, REFERRAL.id, "burst", NIGHT - timedelta(days=30), "sent")],  # too old
    )
    return keys


def test_hostile_referrals_are_refused_with_the_right_reason(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        keys = _world(connection)
    advocates = [keys[a] for a in CONVERSIONS]
    candidates = {REFERRAL.id: advocates}
    with engine.connect() as connection:
        facts = gather_referrals(
            connection, [REFERRAL], candidates, NIGHT, day_end(NIGHT, ZONE), PREVIOUS, ZONE
        )
    mine = facts[REFERRAL.id]
    assert len(mine[keys["lazy"]].conversions) == 1  # yesterday's is outside the window
    assert len(mine[keys["burst"]].rewarded_on) == 3
    states = {pk: MemberState(m, True, False) for m, pk in keys.items()}
    night = NightInput(NIGHT, [REFERRAL], states, candidates, {}, facts)
    plan = plan_night(night, POLICY, FixedBudgets())
    cp = plan.campaigns[0]
    by_pk = {pk: m for m, pk in keys.items()}
    assert {by_pk[pk]: outcome for pk, outcome in cp.outcomes.items()} == EXPECTED
    assert plan.exclusion(night, cp, keys["burst"]) == ReferralLimit(3, 3, 30)
    refused = plan.exclusion(night, cp, keys["gmail"])
    assert isinstance(refused, ReferralRefused)
    assert refused.refused[0].detail == "gmail-alias has the advocate's email (janedoe@gmail.com)"
    ghost = plan.exclusion(night, cp, keys["ghost-referrer"])
    assert isinstance(ghost, ReferralRefused)
    assert ghost.refused[0].detail == "no member 'nobody-we-know'"


def test_no_referral_campaign_costs_no_query(engine: sa.Engine) -> None:
    plain = make_campaign("plain")
    with engine.connect() as connection:
        found = gather_referrals(
            connection, [plain], {"plain": [1]}, NIGHT, day_end(NIGHT, ZONE), None, ZONE
        )
    assert found == {}
