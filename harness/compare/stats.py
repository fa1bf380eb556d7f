"""The statistics of a release comparison, kept honest for the handful of repeats a chaos suite
can afford: a bootstrap interval of the difference of medians, and a Mann-Whitney U test that is
exact for small samples (so it says plainly when three runs a side cannot prove anything).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
# Fixed so that comparing the same runs twice gives the same interval and the same verdict.
SEED = 20_240_905
# Above this many ways of splitting the pooled samples, the U test uses its normal approximation.
EXACT_SPLITS_MAX = 20_000


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def median(values: Sequence[float]) -> float:
    return float(np.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    return float(np.percentile(values, q))


def bootstrap_median_difference(
    baseline: Sequence[float],
    candidate: Sequence[float],
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Interval:
    """Percentile bootstrap interval of median(candidate) - median(baseline).

    Each side is resampled with replacement on its own, as the two releases ran independently.
    """
    if not baseline or not candidate:
        raise ValueError("bootstrap needs at least one value on each side")
    generator = np.random.default_rng(seed)
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    base_medians = np.median(generator.choice(base, (resamples, base.size)), axis=1)
    cand_medians = np.median(generator.choice(cand, (resamples, cand.size)), axis=1)
    differences = cand_medians - base_medians
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(differences, [tail, 100 - tail])
    return Interval(float(low), float(high))


def mann_whitney_p(baseline: Sequence[float], candidate: Sequence[float]) -> float:
    """Two-sided p-value of the Mann-Whitney U test (ties get average ranks).

    Exact, by enumerating every split of the pooled ranks, when that is cheap: with three runs a
    side the smallest possible p is 0.1, and the test should say so rather than pretend.
    """
    n1, n2 = len(baseline), len(candidate)
    if n1 == 0 or n2 == 0:
        raise ValueError("the U test needs at least one value on each side")
    ranks = _average_ranks([*baseline, *candidate])
    observed = _u_statistic(ranks[:n1], n1)
    mean_u = n1 * n2 / 2
    if math.comb(n1 + n2, n1) <= EXACT_SPLITS_MAX:
        return _exact_p(ranks, n1, abs(observed - mean_u))
    return _normal_p(ranks, n1, n2, observed)


def _average_ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda index: values[index])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _u_statistic(first_ranks: Sequence[float], n1: int) -> float:
    return sum(first_ranks) - n1 * (n1 + 1) / 2


def _exact_p(ranks: Sequence[float], n1: int, observed_distance: float) -> float:
    n2 = len(ranks) - n1
    mean_u = n1 * n2 / 2
    splits = 0
    as_extreme = 0
    for chosen in itertools.combinations(ranks, n1):
        splits += 1
        # A small tolerance: average ranks make U a multiple of 0.5, compared as floats.
        if abs(_u_statistic(chosen, n1) - mean_u) >= observed_distance - 1e-9:
            as_extreme += 1
    return as_extreme / splits


def _normal_p(ranks: Sequence[float], n1: int, n2: int, observed: float) -> float:
    n = n1 + n2
    tie_sizes: dict[float, int] = {}
    for rank in ranks:
        tie_sizes[rank] = tie_sizes.get(rank, 0) + 1
    tie_term = sum(t**3 - t for t in tie_sizes.values()) / (n * (n - 1))
    variance = n1 * n2 / 12 * ((n + 1) - tie_term)
    if variance <= 0:
        return 1.0
    # Continuity correction of one half towards the mean.
    distance = max(abs(observed - n1 * n2 / 2) - 0.5, 0.0)
    z = distance / math.sqrt(variance)
    return min(1.0, math.erfc(z / math.sqrt(2)))
