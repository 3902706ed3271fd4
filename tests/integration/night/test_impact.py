"""``night.impact.impact_report`` on SQLite and PostgreSQL: synthetic campaigns with a
known effect, the response rule fatigue uses, revenue in the window, the ledger's cost and
variants."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from audience.facts import EventFact
from night.impact import impact_report
from nudgeflow.money import Money
from store import ledger
from store.schema import actions
from tests.integration.community import DAY, Person, add_events, insert_people

AS_OF = date(2026, 3, 2)
FROM = 1_772_409_600  # 2026-03-02 00:00 UTC: the end of the night before the windows
_NOW = datetime(2026, 3, 1)


def _action(
    campaign_id: str,
    pk: int,
    n: int,
    *,
    holdout: bool,
    as_of: date = AS_OF,
    variant: str | None = None,
    state: str | None = None,
    types: tuple[str, ...] = ("email_clicked",),
) -> dict[str, Any]:
    return {
        "action_id": f"{campaign_id}-{n}",
        "campaign_id": campaign_id,
        "member_pk": pk,
        "occurrence": "once",
        "as_of": as_of,
        "state": state or ("held_out" if holdout else "sent"),
        "holdout": holdout,
        "reward": None,
        "cost_minor": 0,
        "currency": None,
        "template": "thanks",
        "variant": None if holdout else variant,
        "response_types": list(types),
        "response_from": FROM,
        "response_until": FROM + 7 * DAY,
        "created_at": _NOW,
        "updated_at": _NOW,
    }


def world(
    engine: sa.Engine,
    campaign_id: str,
    *,
    treated: int,
    held_out: int,
    rates: tuple[float, float],
    seed: int,
    variants: dict[str, float] | None = None,
) -> dict[str, int]:
    """Members nudged by ``campaign_id`` (treated) or held out, each responding (a click
    inside the window, plus a 20.00 purchase) with the group's rate."""
    rng = random.Random(seed)
    people = [Person(f"{campaign_id}-m{i}", None) for i in range(treated + held_out)]
    rows, clicks = [], []
    names = list(variants or {})
    with engine.begin() as connection:
        keys = insert_people(connection, people)
        for i, person in enumerate(people):
            holdout = i >= treated
            variant = names[i % len(names)] if names and not holdout else None
            rate = (
                rates[1] if holdout else (variants[variant] if variants and variant else rates[0])
            )
            rows.append(
                _action(campaign_id, keys[person.member_id], i, holdout=holdout, variant=variant)
            )
            if rng.random() < rate:
                clicks.append((person.member_id, EventFact("email_clicked", FROM + DAY)))
                clicks.append((person.member_id, EventFact("purchase", FROM + DAY, 2000, "USD")))
        connection.execute(sa.insert(actions), rows)
        add_events(connection, keys, clicks)
    return keys


def report(engine: sa.Engine, **kwargs: Any) -> Any:
    return impact_report(
        engine,
        start=kwargs.pop("start", None),
        end=kwargs.pop("end", None),
        currency="USD",
        **kwargs,
    )


def test_a_known_effect_is_found_and_no_effect_is_not(engine: sa.Engine) -> None:
    world(engine, "works", treated=900, held_out=300, rates=(0.30, 0.10), seed=1)
    world(engine, "idle", treated=900, held_out=300, rates=(0.20, 0.20), seed=2)
    found = {c.campaign_id: c for c in report(engine).campaigns}
    works, idle = found["works"], found["idle"]
    assert (works.treated, works.held_out) == (900, 300)
    assert works.uplift is not None and idle.uplift is not None
    assert works.uplift.low <= 0.20 <= works.uplift.high
    assert works.uplift.low > 0 and works.measured
    assert works.verdict.startswith("raised responses by")
    assert idle.uplift.low <= 0 <= idle.uplift.high
    assert not idle.measured and "no measurable effect" in idle.verdict
    # Revenue: every responder bought 20.00, so the revenue uplift is 2000 × the uplift.
    assert works.revenue_uplift is not None
    assert works.revenue_uplift.estimate == pytest.approx(2000 * works.uplift.estimate)
    assert works.revenue_uplift.low > 0
    assert works.as_dict()["revenue_uplift_minor"] == round(2000 * works.uplift.estimate)


def test_the_response_window_and_types_decide_as_fatigue_does(engine: sa.Engine) -> None:
    people = [Person(f"m{i}", None) for i in range(6)]
    with engine.begin() as connection:
        keys = insert_people(connection, people)
        pk = [keys[p.member_id] for p in people]
        connection.execute(
            sa.insert(actions),
            [
                _action("c", pk[0], 0, holdout=False),  # clicked inside: answered
                _action("c", pk[1], 1, holdout=False),  # clicked before the window
                _action("c", pk[2], 2, holdout=False),  # clicked at response_until: too late
                _action("c", pk[3], 3, holdout=False),  # opened: not a response type
                _action("c", pk[4], 4, holdout=True),  # held out, clicked inside: answered
                _action("c", pk[5], 5, holdout=False, state="failed"),  # never sent: not counted
            ],
        )
        add_events(
            connection,
            keys,
            [
                ("m0", EventFact("email_clicked", FROM)),
                ("m1", EventFact("email_clicked", FROM - 1)),
                ("m2", EventFact("email_clicked", FROM + 7 * DAY)),
                ("m3", EventFact("email_opened", FROM + DAY)),
                ("m4", EventFact("email_clicked", FROM + 6 * DAY)),
                ("m4", EventFact("purchase", FROM + DAY, 999, "EUR")),  # not the currency
                ("m5", EventFact("email_clicked", FROM + DAY)),
            ],
        )
    (row,) = report(engine).campaigns
    assert (row.treated, row.treated_responded, row.held_out, row.held_out_responded) == (
        4,
        1,
        1,
        1,
    )
    assert row.revenue_uplift is not None and row.revenue_uplift.estimate == 0
    assert "too few held out (1)" in row.verdict and "more members needed" in row.verdict
    assert row.members_needed_more is not None and row.members_needed_more > 0


def test_period_and_campaign_filters(engine: sa.Engine) -> None:
    people = [Person(f"m{i}", None) for i in range(3)]
    with engine.begin() as connection:
        keys = insert_people(connection, people)
        connection.execute(
            sa.insert(actions),
            [
                _action("a", keys["m0"], 0, holdout=False, as_of=AS_OF - timedelta(days=1)),
                _action("a", keys["m1"], 1, holdout=False),
                _action("b", keys["m2"], 2, holdout=True),
            ],
        )
    assert [(c.campaign_id, c.treated) for c in report(engine).campaigns] == [("a", 2), ("b", 0)]
    assert [(c.campaign_id, c.treated) for c in report(engine, start=AS_OF).campaigns] == [
        ("a", 1),
        ("b", 0),
    ]
    early = report(engine, end=AS_OF - timedelta(days=1))
    assert [(c.campaign_id, c.treated) for c in early.campaigns] == [("a", 1)]
    assert [c.campaign_id for c in report(engine, campaign="b").campaigns] == ["b"]
    b = report(engine, campaign="b").campaigns[0]
    assert b.uplift is None and b.verdict == "nothing sent yet"
    a = report(engine, campaign="a").campaigns[0]
    assert a.uplift is None and a.verdict.startswith("no control group")
    assert report(engine, campaign="nope").campaigns == ()


def test_cost_comes_from_the_ledger(engine: sa.Engine) -> None:
    keys = world(engine, "paid", treated=400, held_out=100, rates=(0.5, 0.1), seed=3)
    pks = list(keys.values())
    usd = Money(500, "USD")
    with ledger.ledger_transaction(engine) as connection:
        for n in range(10):
            action = f"paid-{n}"
            assert ledger.reserve(connection, action, "paid", usd, None, AS_OF, fund_shortfall=True)
            ledger.issue(connection, action, f"ref{n}", business_date=AS_OF)
            if n < 4:  # redeemed at 3.00: spent; the rest still outstanding
                ledger.redeem(connection, action, Money(300, "USD"), None, business_date=AS_OF)
        # Reserved but never issued: neither spent nor outstanding.
        ledger.reserve(connection, "paid-10", "paid", usd, None, AS_OF, fund_shortfall=True)
    assert len(pks) == 500
    (row,) = report(engine).campaigns
    assert (row.spent_minor, row.outstanding_minor, row.cost_minor) == (1200, 3000, 4200)
    assert row.measured and row.uplift is not None
    expected = round(4200 / (row.uplift.estimate * 400))
    assert row.cost_per_incremental_response_minor == expected
    assert row.as_dict()["cost_per_incremental_response_minor"] == expected


def test_variants_share_the_control_group_and_a_winner_is_named_only_when_clear(
    engine: sa.Engine,
) -> None:
    world(
        engine,
        "ab",
        treated=1200,
        held_out=300,
        rates=(0.0, 0.10),
        seed=4,
        variants={"plain": 0.12, "bold": 0.40},
    )
    world(
        engine,
        "tie",
        treated=600,
        held_out=200,
        rates=(0.0, 0.10),
        seed=5,
        variants={"x": 0.20, "y": 0.20},
    )
    result = report(engine)
    ab = {c.variant: c for c in result.campaigns if c.campaign_id == "ab"}
    assert set(ab) == {None, "plain", "bold"}
    assert ab[None].treated == ab["plain"].treated + ab["bold"].treated == 1200
    assert ab["plain"].held_out == ab["bold"].held_out == ab[None].held_out == 300
    assert result.winner("ab") == "bold" and ab["bold"].winner
    assert "winner" in ab["bold"].verdict
    assert result.winner("tie") is None
    assert [c["variant"] for c in result.as_dict()["campaigns"] if c["id"] == "tie"] == [
        None,
        "x",
        "y",
    ]
