"""The personas of the demo community: who a member is, and the rhythms they live by.

Every generated member is given one persona:

=============  ====================================================================
never          window shoppers: logins and newsletters, no purchase (no stage)
one_time       a single purchase soon after joining (adopter)
repeat         a few purchases weeks to months apart (adopter, sometimes loyalist)
loyal          frequent purchases (loyalist)
community      logins, posts, up to two answers, a purchase or two (adopter)
advocate       repeat buyers with at least three advocacy actions (advocate)
lapsed         many purchases, then nothing for at least six months (loyalist → adopter)
=============  ====================================================================

so the default retention ladder finds members in every stage, in a pyramid. Only the
advocate persona can reach three advocacy actions; the others stop at two, so the top of the
pyramid stays narrow and predictable.
"""

from __future__ import annotations

from itertools import accumulate
from typing import NamedTuple

NEVER, ONE_TIME, REPEAT, LOYAL, COMMUNITY, ADVOCATE, LAPSED = range(7)
PERSONAS = ("never", "one_time", "repeat", "loyal", "community", "advocate", "lapsed")

ADVOCACY_TYPES = (
    "review_posted",
    "referral_made",
    "case_study",
    "talk_given",
    "guest_post",
    "answer_posted",
)


class PersonaTraits(NamedTuple):
    """How members of one persona join, log in, read newsletters, buy and take part."""

    weight: float  # % of members
    pre_share: float  # share who joined before the window
    tail_days: float  # latest join, in days before the end: long histories need room
    login_gap: float  # mean days between logins
    p_receive: float  # newsletter inclusion
    p_open: float
    p_click: float
    basket: float  # median basket
    plan_weights: tuple[float, float, float]  # free, pro, team
    p_forum: float  # the chance of joining the community forum


# In persona order: NEVER, ONE_TIME, REPEAT, LOYAL, COMMUNITY, ADVOCATE, LAPSED.
PERSONA_TRAITS = (
    PersonaTraits(6.0, 0.20, 0.0, 150.0, 0.10, 0.15, 0.10, 0.0, (0.90, 0.10, 0.00), 0.15),
    PersonaTraits(30.0, 0.20, 0.0, 365.0, 0.10, 0.20, 0.15, 45.0, (0.80, 0.18, 0.02), 0.05),
    PersonaTraits(24.0, 0.35, 30.0, 150.0, 0.11, 0.30, 0.20, 60.0, (0.60, 0.33, 0.07), 0.12),
    PersonaTraits(11.0, 0.50, 60.0, 75.0, 0.12, 0.45, 0.25, 75.0, (0.35, 0.50, 0.15), 0.30),
    PersonaTraits(12.0, 0.40, 30.0, 25.0, 0.12, 0.50, 0.30, 55.0, (0.60, 0.30, 0.10), 1.00),
    PersonaTraits(6.0, 0.70, 90.0, 35.0, 0.12, 0.60, 0.40, 90.0, (0.30, 0.45, 0.25), 1.00),
    PersonaTraits(11.0, 0.70, 250.0, 90.0, 0.10, 0.12, 0.10, 70.0, (0.60, 0.30, 0.10), 0.10),
)
PERSONA_CUMULATIVE = list(accumulate(p.weight for p in PERSONA_TRAITS))

# Mean days between purchases (gamma, shape 2) and the chance to stop after each purchase.
BUY_RHYTHM = {REPEAT: (60.0, 0.18), LOYAL: (21.0, 0.02), ADVOCATE: (35.0, 0.04)}
# Advocacy action mix for the advocate persona (weights follow ADVOCACY_TYPES).
ADVOCACY_CUMULATIVE = list(accumulate((30, 25, 7, 8, 10, 20)))
MEETUPS = ("webinar-onboarding", "meetup-berlin", "meetup-nyc", "summit-2", "ama-product")
MEETUP_CHANCE = {COMMUNITY: 0.35, ADVOCATE: 0.6, LOYAL: 0.1}
NPS_RANGE = {
    NEVER: (3, 8),
    ONE_TIME: (4, 9),
    REPEAT: (6, 10),
    LOYAL: (7, 10),
    COMMUNITY: (6, 10),
    ADVOCATE: (9, 10),
    LAPSED: (2, 7),
}
