"""The statistics of ``nudgeflow impact`` against a reference: statsmodels, Newcombe's
published examples, the textbook sample size, and coverage over many seeded draws."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from domain.stats import (
    RESAMPLES,
    bootstrap_mean_difference,
    members_needed,
    newcombe_difference,
    wilson,
)

# Newcombe R. G. (1998), "Interval estimation for the difference between independent
# proportions: comparison of eleven methods", Statistics in Medicine 17, 873-890, Table II,
# method 10 (score interval, no continuity correction): (x1, n1, x2, n2) → (low, high).
NEWCOMBE_TABLE_II = [
    ((56, 70, 48, 80), (0.0524, 0.3339)),
    ((9, 10, 3, 10), (0.1705, 0.8090)),
    ((6, 7, 2, 7), (0.0582, 0.8062)),
    ((5, 56, 0, 29), (-0.0381, 0.1926)),
    ((0, 10, 0, 20), (-0.1611, 0.2775)),
    ((0, 10, 0, 10), (-0.2775, 0.2775)),
    ((10, 10, 0, 20), (0.6791, 1.0000)),
    ((10, 10, 0, 10), (0.6075, 1.0000)),
]


@pytest.mark.parametrize(("counts", "expected"), NEWCOMBE_TABLE_II)
def test_newcombe_matches_the_published_examples(
    counts: tuple[int, int, int, int], expected: tuple[float, float]
) -> None:
    interval = newcombe_difference(*counts)
    assert (round(interval.low, 4), round(interval.high, 4)) == expected


@settings(max_examples=200, deadline=None)
@given(
    n1=st.integers(1, 500),
    n2=st.integers(1, 500),
    data=st.data(),
)
def test_newcombe_agrees_with_statsmodels(n1: int, n2: int, data: st.DataObject) -> None:
    x1 = data.draw(st.integers(0, n1))
    x2 = data.draw(st.integers(0, n2))
    interval = newcombe_difference(x1, n1, x2, n2)
    # statsmodels' compare="diff" is also group 1 minus group 2.
    low, high = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff")
    assert interval.estimate == pytest.approx(x1 / n1 - x2 / n2)
    assert interval.low == pytest.approx(float(low), abs=1e-9)
    assert interval.high == pytest.approx(float(high), abs=1e-9)
    assert interval.low <= interval.estimate <= interval.high


@pytest.mark.parametrize(("x", "n"), [(0, 10), (3, 10), (10, 10), (81, 263), (1, 1000)])
def test_wilson_matches_statsmodels(x: int, n: int) -> None:
    low, high = proportion_confint(x, n, method="wilson")
    assert wilson(x, n) == pytest.approx((float(low), float(high)), abs=1e-12)


def test_wilson_refuses_impossible_counts() -> None:
    with pytest.raises(ValueError, match="3/0"):
        wilson(3, 0)
    with pytest.raises(ValueError, match="4/3"):
        wilson(4, 3)


def test_newcombe_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    rng = random.Random(2026)
    p1, p2, n1, n2, draws = 0.30, 0.10, 300, 100, 2_000
    covered = 0
    for _ in range(draws):
        x1 = sum(1 for _ in range(n1) if rng.random() < p1)
        x2 = sum(1 for _ in range(n2) if rng.random() < p2)
        interval = newcombe_difference(x1, n1, x2, n2)
        covered += interval.low <= p1 - p2 <= interval.high
    # Binomial noise over 2,000 draws is about ±1 point; Newcombe's is close to nominal.
    assert 0.93 <= covered / draws <= 0.97


@settings(max_examples=8, deadline=None, derandomize=True)
@given(
    p1=st.floats(0.05, 0.95),
    p2=st.floats(0.05, 0.95),
    n1=st.integers(60, 250),
    n2=st.integers(60, 250),
)
def test_coverage_holds_over_random_populations(p1: float, p2: float, n1: int, n2: int) -> None:
    rng = random.Random(hash((p1, p2, n1, n2)) & 0xFFFF)
    draws, covered = 600, 0
    for _ in range(draws):
        x1 = sum(1 for _ in range(n1) if rng.random() < p1)
        x2 = sum(1 for _ in range(n2) if rng.random() < p2)
        interval = newcombe_difference(x1, n1, x2, n2)
        covered += interval.low <= p1 - p2 <= interval.high
    # ±3 standard errors of 600 draws around 95 %.
    assert 0.91 <= covered / draws <= 0.99


def test_members_needed_is_the_textbook_figure() -> None:
    # 10 % against 15 %, 5 % two-sided, 80 % power, equal groups: 686 per group.
    assert members_needed(0.10, 0.05, ratio=1.0) == 2 * 686
    # A small holdout needs more members in all than an even split.
    assert members_needed(0.10, 0.05, ratio=9.0) > members_needed(0.10, 0.05, ratio=1.0)
    # A baseline near 100 % measures the effect downwards instead of past 100 %.
    assert members_needed(0.98) == members_needed(0.93)


def test_bootstrap_is_reproducible_and_brackets_the_difference() -> None:
    rng = random.Random(7)
    treated = [rng.randint(500, 20_000) for _ in range(120)]  # 120 buyers of 400
    held_out = [rng.randint(500, 20_000) for _ in range(20)]  # 20 buyers of 100
    first = bootstrap_mean_difference(treated, 400, held_out, 100)
    assert first == bootstrap_mean_difference(treated, 400, held_out, 100)
    assert first.estimate == pytest.approx(sum(treated) / 400 - sum(held_out) / 100)
    assert first.low < first.estimate < first.high
    assert first != bootstrap_mean_difference(treated, 400, held_out, 100, seed=99)


def test_bootstrap_covers_the_true_difference_of_skewed_money() -> None:
    # Revenue per member: 30 % buy against 10 %, amounts from a long-tailed distribution.
    rng = random.Random(11)
    mean_amount = 4_000.0
    truth = (0.30 - 0.10) * mean_amount
    covered, draws = 0, 60
    for _ in range(draws):
        treated = [
            int(rng.expovariate(1 / mean_amount)) + 1 for _ in range(400) if rng.random() < 0.3
        ]
        held = [int(rng.expovariate(1 / mean_amount)) + 1 for _ in range(200) if rng.random() < 0.1]
        interval = bootstrap_mean_difference(treated, 400, held, 200, resamples=400)
        covered += interval.low <= truth <= interval.high
    assert covered / draws >= 0.85


def test_bootstrap_needs_members_and_takes_zeros() -> None:
    with pytest.raises(ValueError, match="both groups"):
        bootstrap_mean_difference([], 0, [], 10)
    nothing = bootstrap_mean_difference([0, 0], 10, [], 10)
    assert (nothing.estimate, nothing.low, nothing.high) == (0.0, 0.0, 0.0)
    assert RESAMPLES == 1_000
