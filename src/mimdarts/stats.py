"""Two-sample statistics over seeds: is a method better than a baseline, or can the seeds
not tell?

Pure functions on lists of floats (one value per seed), no torch and no scipy:

- :func:`bootstrap_diff` the difference of means with a percentile bootstrap interval
  (each group resampled with replacement, independently);
- :func:`permutation_p` the two-sided exact permutation test of the difference of means
  (every split of the pooled values when there are at most ``MAX_EXACT`` of them, else a
  seeded Monte Carlo sample of splits); with few seeds it is what a rank test would be,
  and it handles ties (skip counts) without a correction;
- :func:`compare` both, and a sentence saying what they mean.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

MAX_EXACT = 200_000  # splits enumerated exactly (C(20, 10) = 184,756: 10 seeds against 10)
MONTE_CARLO = 50_000  # random splits drawn beyond that


@dataclass(frozen=True)
class Comparison:
    """``method`` against ``baseline`` on one figure: ``diff`` = mean(method) - mean(baseline),
    ``low``/``high`` its bootstrap interval at ``level``, ``p`` the two-sided permutation
    p-value, ``p_min`` the smallest p-value these group sizes can give, ``verdict`` in words."""

    n: int
    n_baseline: int
    diff: float
    low: float
    high: float
    level: float
    p: float
    p_min: float
    verdict: str


def bootstrap_diff(a: Sequence[float], b: Sequence[float], level: float = 0.95,
                   resamples: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """(mean(a) - mean(b), low, high): the percentile bootstrap interval at ``level`` of the
    difference of means, each group resampled with replacement ``resamples`` times (a seeded
    generator: the same interval every time). Needs at least one value in each group.

    Examples:
        >>> diff, low, high = bootstrap_diff([91.0, 92.0, 93.0], [89.0, 90.0, 91.0])
        >>> diff, round(low, 2), round(high, 2)
        (2.0, 0.67, 3.33)
    """
    if not a or not b:
        raise ValueError("bootstrap_diff needs at least one value in each group")
    rng = random.Random(seed)
    diffs = sorted(statistics.fmean(rng.choices(a, k=len(a))) - statistics.fmean(rng.choices(b, k=len(b)))
                   for _ in range(resamples))
    tail = (1 - level) / 2
    lo = diffs[int(math.floor(tail * (resamples - 1)))]
    hi = diffs[int(math.ceil((1 - tail) * (resamples - 1)))]
    return statistics.fmean(a) - statistics.fmean(b), lo, hi


def permutation_p(a: Sequence[float], b: Sequence[float], seed: int = 0) -> float:
    """Two-sided p-value of the difference of means under exchangeability: the share of
    splits of the pooled values into groups of ``len(a)`` and ``len(b)`` whose
    |difference of means| is at least the observed one (the observed split counts).

    Examples:
        Of the 20 splits of six values into two groups of three, this one and its mirror
        image are the most extreme:

        >>> permutation_p([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
        0.1
    """
    pooled, k = [*a, *b], len(a)
    n, total = len(pooled), sum(pooled)
    observed = abs(statistics.fmean(a) - statistics.fmean(b))
    eps = 1e-12 * max(1.0, observed)  # equal up to float rounding counts as as extreme

    def extreme(first_sum: float) -> bool:
        return abs(first_sum / k - (total - first_sum) / (n - k)) >= observed - eps

    if math.comb(n, k) <= MAX_EXACT:
        hits = sum(extreme(sum(c)) for c in itertools.combinations(pooled, k))
        return hits / math.comb(n, k)
    rng = random.Random(seed)
    hits = sum(extreme(sum(rng.sample(pooled, k))) for _ in range(MONTE_CARLO))
    return (hits + 1) / (MONTE_CARLO + 1)  # the observed split counted once


def smallest_p(n: int, m: int) -> float:
    """The smallest two-sided permutation p-value groups of ``n`` and ``m`` can give (distinct
    values): the most extreme split alone, or with its mirror image when ``n == m``.

    Examples:
        >>> smallest_p(3, 3), round(smallest_p(5, 5), 4)
        (0.1, 0.0079)
    """
    return min(1.0, (2 if n == m else 1) / math.comb(n + m, n))


def compare(method: Sequence[float], baseline: Sequence[float], level: float = 0.95,
            alpha: float = 0.05) -> Comparison:
    """The difference of means, its bootstrap interval, the permutation p-value and a verdict:
    "higher"/"lower" when the interval excludes 0 and p < ``alpha``; otherwise that these
    seeds cannot separate the two (and, when even the most extreme split could not reach
    ``alpha``, that more seeds are needed for a test at all).

    Examples:
        >>> compare([91.0, 92.0, 93.0], [89.0, 90.0, 91.0]).verdict
        'cannot be separated: with 3 and 3 seeds no outcome reaches p < 0.05 (smallest possible p = 0.100)'
        >>> compare([94.1, 94.3, 94.2, 94.4, 94.0], [90.1, 91.0, 89.5, 92.0, 90.6]).verdict
        'higher than the baseline (p = 0.008)'
    """
    diff, lo, hi = bootstrap_diff(method, baseline, level)
    p = permutation_p(method, baseline)
    p_min = smallest_p(len(method), len(baseline))
    if p_min >= alpha:
        verdict = (f"cannot be separated: with {len(method)} and {len(baseline)} seeds no "
                   f"outcome reaches p < {alpha} (smallest possible p = {p_min:.3f})")
    elif p < alpha and (lo > 0 or hi < 0):
        verdict = f"{'higher' if diff > 0 else 'lower'} than the baseline (p = {p:.3f})"
    else:
        verdict = (f"not separated by these seeds (the interval holds 0 or p = {p:.3f} "
                   f">= {alpha})")
    return Comparison(len(method), len(baseline), diff, lo, hi, level, p, p_min, verdict)
