"""The statistics of ``nudgeflow impact`` (pure, plain Python, no clock, no I/O).

* ``wilson`` — the Wilson score interval for one proportion.
* ``newcombe_difference`` — Newcombe's hybrid score interval for the difference of two
  independent proportions, ``p1 - p2`` (Newcombe 1998, method 10): each proportion's Wilson
  interval, combined. It keeps its coverage close to 95 % for small groups and rates near
  0 or 1, where the textbook ``p ± 1.96·se`` interval does not, and never leaves [-1, 1].
  Checked against statsmodels' ``confint_proportions_2indep(..., method="newcomb")`` and
  the worked examples of Newcombe's paper (tests/unit/domain/test_stats.py).
* ``bootstrap_mean_difference`` — a percentile bootstrap interval for the difference of two
  means, for money: revenue per member is mostly zero with a long tail, which a normal
  interval describes badly. ``RESAMPLES`` resamples from a fixed seed, so the same data
  always gives the same interval.
* ``members_needed`` — how many members (treated and held out together, in the campaign's
  split) the usual two-proportion sample-size formula asks for to detect an effect.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95
Z95 = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)  # 1.959963984540054
POWER = 0.80
RESAMPLES = 1_000
SEED = 13
# Above this many members a resample's number of purchasers is drawn from the normal
# approximation of the binomial (np(1-p) is then large enough, or nobody bought); below it,
# one Bernoulli draw per member.
_EXACT_BINOMIAL = 1_000


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of ``successes / n`` (``n`` > 0)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    # Exact at the edges (the formula gives them up to rounding).
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def newcombe_difference(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> Interval:
    """``x1/n1 - x2/n2`` with Newcombe's hybrid score interval (method 10)."""
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return Interval(d, max(-1.0, low), min(1.0, high))


def _binomial(rng: random.Random, n: int, p: float) -> int:
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if n <= _EXACT_BINOMIAL:
        return sum(1 for _ in range(n) if rng.random() < p)
    draw = round(rng.gauss(n * p, math.sqrt(n * p * (1 - p))))
    return min(n, max(0, draw))


def _resampled_mean(rng: random.Random, n: int, amounts: Sequence[int]) -> float:
    """The mean of one bootstrap resample of ``n`` members, of whom ``amounts`` are the
    non-zero values (everyone else is zero): the number of non-zero members in the resample
    is binomial, and they are drawn with replacement from ``amounts``."""
    k = _binomial(rng, n, len(amounts) / n)
    if k == 0:
        return 0.0
    return sum(rng.choices(amounts, k=k)) / n


def bootstrap_mean_difference(
    treated: Sequence[int],
    n_treated: int,
    held_out: Sequence[int],
    n_held_out: int,
    *,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Mean of group 1 minus mean of group 2, with a 95 % percentile bootstrap interval.

    Each group is given as its non-zero values and its size (members who bought nothing are
    zeros: a million members need not be listed). Each of ``resamples`` resamples draws both
    groups anew, with replacement, from a ``random.Random(seed)``.
    """
    if n_treated <= 0 or n_held_out <= 0:
        raise ValueError("both groups need members")
    treated, held_out = [v for v in treated if v], [v for v in held_out if v]
    estimate = sum(treated) / n_treated - sum(held_out) / n_held_out
    rng = random.Random(seed)
    diffs = sorted(
        _resampled_mean(rng, n_treated, treated) - _resampled_mean(rng, n_held_out, held_out)
        for _ in range(resamples)
    )
    alpha = 1 - CONFIDENCE
    low = diffs[max(0, math.floor(alpha / 2 * resamples))]
    high = diffs[min(resamples - 1, math.ceil((1 - alpha / 2) * resamples) - 1)]
    return Interval(estimate, low, high)


def members_needed(
    baseline: float, effect: float = 0.05, ratio: float = 1.0, power: float = POWER
) -> int:
    """Members in all (treated plus held out) to detect ``baseline + effect`` against
    ``baseline`` with a two-sided 95 % test and the given power, when there are ``ratio``
    treated members per held-out member: the usual two-proportion formula (Fleiss, without
    continuity correction) for unequal groups.

    For 10 % against 15 % in equal groups it gives 686 per group, as every table does.
    """
    if ratio <= 0:
        raise ValueError("ratio must be positive")
    p2 = min(max(baseline, 0.0), 1.0)
    p1 = p2 + effect
    if p1 > 1:  # no room above the baseline: measure the effect downwards
        p1 = p2 - effect
    z_beta = NormalDist().inv_cdf(power)
    k = ratio
    pooled = (k * p1 + p2) / (k + 1)
    root = Z95 * math.sqrt(pooled * (1 - pooled) * (1 + 1 / k)) + z_beta * math.sqrt(
        p2 * (1 - p2) + p1 * (1 - p1) / k
    )
    held_out = math.ceil(root * root / (effect * effect))
    return held_out + math.ceil(held_out * k)
