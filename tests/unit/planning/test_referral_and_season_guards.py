"""The planner's seasonal and referral guards: counted under their reason, in order, with
the facts ``why`` shows (``Plan.exclusion``)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from domain.campaign import Campaign, FrequencyCap, Policy, Trigger
from domain.plan import (
    EXCLUSION_REASONS,
    MemberState,
    NightInput,
    OutOfSeason,
    ReferralLimit,
    ReferralRefused,
)
from domain.referrals import Conversion, Person, Referrals
from planning.planner import FixedBudgets, plan_night
from tests.campaigns import make_campaign

AS_OF = date(2026, 12, 1)
POLICY = Policy((), 3, "nudge-fatigued", 90, "09:00", "18:00", "member")
REFERRAL = make_campaign(
    "referral",
    trigger=Trigger("event", types=("referral_converted",)),
    once_per_member=False,
    referral_limit=FrequencyCap(2, 30),
)


def _state(pk: int, **changes: object) -> MemberState:
    return replace(MemberState(f"m{pk}", True, False), **changes)  # type: ignore[arg-type]


def _person(pk: int, email: str, customer: str | None = None) -> Person:
    return Person(pk, f"m{pk}", email, customer)


def _night(campaign: Campaign, referrals: dict[int, Referrals], pks: list[int]) -> NightInput:
    members = {pk: _state(pk) for pk in pks}
    return NightInput(AS_OF, [campaign], members, {campaign.id: pks}, {}, {campaign.id: referrals})


def test_the_new_reasons_sit_in_the_guard_order() -> None:
    order = EXCLUSION_REASONS
    assert order[0] == "out_of_season"
    refusals = ("self_referral", "referral_existing_customer", "referral_unconverted")
    assert order.index("already_received") < order.index(refusals[0])
    assert [order.index(r) for r in refusals] == sorted(order.index(r) for r in refusals)
    assert order.index("referral_velocity") < order.index("lower_priority")


def test_out_of_season_excludes_every_candidate_and_in_season_does_not() -> None:
    winter = make_campaign("winter", starts_on=date(2026, 12, 5), ends_on=date(2026, 12, 24))
    night = NightInput(AS_OF, [winter], {1: _state(1), 2: _state(2)}, {"winter": [1, 2]}, {})
    plan = plan_night(night, POLICY, FixedBudgets())
    cp = plan.campaigns[0]
    assert cp.excluded["out_of_season"] == 2 and not cp.actions
    assert plan.exclusion(night, cp, 1) == OutOfSeason(date(2026, 12, 5), date(2026, 12, 24))
    for day in (date(2026, 12, 5), date(2026, 12, 24)):  # both ends are in season
        cp = plan_night(replace(night, as_of=day), POLICY, FixedBudgets()).campaigns[0]
        assert cp.selected == 2


def test_hostile_referrals_are_refused_with_the_right_reason() -> None:
    acme = _person(1, "jane@acme.io", "cus_1")
    conv = Conversion
    facts = {
        # same member
        1: Referrals(acme, (conv(10, "r1", "m1", acme, 5, 1),)),
        # same email after normalising
        2: Referrals(
            _person(2, "j.doe@gmail.com"),
            (conv(10, "r2", "m12", _person(12, " JDoe+2@gmail.com"), 9, 1),),
        ),
        # same Stripe customer
        3: Referrals(
            _person(3, "a@x.org", "cus_3"),
            (conv(10, "r3", "m13", _person(13, "b@y.org", "cus_3"), 9, 1),),
        ),
        # same company domain
        4: Referrals(
            _person(4, "a@acme.io"), (conv(10, "r4", "m14", _person(14, "b@acme.io"), 9, 1),)
        ),
        # an existing customer: bought before the referral began
        5: Referrals(_person(5, "a@x.org"), (conv(10, "r5", "m15", _person(15, "b@y.org"), 1, 5),)),
        # no purchase yet
        6: Referrals(
            _person(6, "a@x.org"), (conv(10, "r6", "m16", _person(16, "b@y.org"), None, 5),)
        ),
        # a burst: two rewards already in the window
        7: Referrals(
            _person(7, "a@x.org"),
            (conv(10, "r7", "m17", _person(17, "b@y.org"), 9, 5),),
            (date(2026, 11, 20), date(2026, 11, 30)),
        ),
        # a real referral
        8: Referrals(
            _person(8, "a@x.org"), (conv(10, "r8", "m18", _person(18, "c@gmail.com"), 9, 5),)
        ),
    }
    pks = [*facts, 9]  # 9: a candidate with no conversion found
    night = _night(REFERRAL, facts, pks)
    plan = plan_night(night, POLICY, FixedBudgets())
    cp = plan.campaigns[0]
    assert {pk: cp.outcomes[pk] for pk in pks} == {
        1: "self_referral",
        2: "self_referral",
        3: "self_referral",
        4: "self_referral",
        5: "referral_existing_customer",
        6: "referral_unconverted",
        7: "referral_velocity",
        8: "selected",
        9: "referral_unconverted",
    }
    assert cp.excluded["self_referral"] == 4
    assert plan.exclusion(night, cp, 7) == ReferralLimit(2, 2, 30)
    refused = plan.exclusion(night, cp, 3)
    assert isinstance(refused, ReferralRefused)
    assert "Stripe customer" in refused.refused[0].detail
    assert plan.exclusion(night, cp, 9) == ReferralRefused(())


def test_the_guards_leave_other_campaigns_alone() -> None:
    plain = make_campaign("plain")
    night = NightInput(AS_OF, [plain], {1: _state(1)}, {"plain": [1]}, {})
    assert plan_night(night, POLICY, FixedBudgets()).campaigns[0].selected == 1
