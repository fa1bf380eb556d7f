from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
import pytest

from harness.compare import stats


def test_the_interval_contains_the_true_shift_on_synthetic_data() -> None:
    """Over many synthetic experiments, a 95 % interval should hold the true difference of
    medians most of the time (the percentile bootstrap runs a little narrow at small n)."""
    generator = np.random.default_rng(1)
    true_shift = 100.0
    covered = 0
    experiments = 200
    for _ in range(experiments):
        baseline = generator.normal(400, 30, 15)
        candidate = generator.normal(400 + true_shift, 30, 15)
        interval = stats.bootstrap_median_difference(list(baseline), list(candidate), seed=7)
        covered += interval.low <= true_shift <= interval.high
    assert covered / experiments >= 0.88


def test_an_obvious_shift_excludes_zero() -> None:
    interval = stats.bootstrap_median_difference([400, 410, 395], [900, 950, 920])
    assert interval.excludes_zero()
    assert interval.low > 400


def test_identical_samples_do_not_exclude_zero() -> None:
    values = [400.0, 452.0, 377.0, 430.0, 415.0]
    interval = stats.bootstrap_median_difference(values, values)
    assert not interval.excludes_zero()
    assert interval.low < 0 < interval.high


def test_constant_samples_give_a_zero_width_interval_at_zero() -> None:
    interval = stats.bootstrap_median_difference([5.0, 5.0], [5.0, 5.0])
    assert (interval.low, interval.high) == (0.0, 0.0)
    assert not interval.excludes_zero()


def test_the_interval_is_reproducible() -> None:
    baseline, candidate = [400, 410, 395, 430], [420, 470, 401, 455]
    first = stats.bootstrap_median_difference(baseline, candidate)
    assert first == stats.bootstrap_median_difference(baseline, candidate)


def test_the_bootstrap_needs_values_on_both_sides() -> None:
    with pytest.raises(ValueError):
        stats.bootstrap_median_difference([], [1.0])


def test_median_and_p95() -> None:
    values = [float(v) for v in range(1, 101)]
    assert stats.median(values) == 50.5
    assert stats.percentile(values, 95) == pytest.approx(95.05)


def test_mann_whitney_exact_for_three_a_side() -> None:
    # Complete separation of 3 against 3: the most extreme of C(6, 3) = 20 splits, both ways.
    assert stats.mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert stats.mann_whitney_p([4, 5, 6], [1, 2, 3]) == pytest.approx(0.1)
    assert stats.mann_whitney_p([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)


def test_mann_whitney_known_values() -> None:
    # Reference values from R's wilcox.test(exact=TRUE) / scipy's mannwhitneyu(method="exact").
    assert stats.mann_whitney_p([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(2 / 70)
    assert stats.mann_whitney_p([1, 3, 5], [2, 4, 6]) == pytest.approx(0.7)


def test_mann_whitney_large_samples_use_the_normal_approximation() -> None:
    generator = np.random.default_rng(3)
    baseline = list(generator.normal(0, 1, 40))
    shifted = [value + 3 for value in generator.normal(0, 1, 40)]
    assert stats.mann_whitney_p(baseline, shifted) < 1e-6
    assert stats.mann_whitney_p(baseline, baseline) == pytest.approx(1.0)


def _pairwise_u(first: Sequence[float], second: Sequence[float]) -> float:
    """U by its definition, sharing nothing with the ranks: pairs won, a tie counting half."""
    return sum((x > y) + 0.5 * (x == y) for x in first for y in second)


def _permutation_p(baseline: Sequence[float], candidate: Sequence[float]) -> float:
    """Exact two-sided p by brute force: every way of splitting the pooled values."""
    pooled = [*baseline, *candidate]
    n1, n2 = len(baseline), len(candidate)
    observed = abs(_pairwise_u(baseline, candidate) - n1 * n2 / 2)
    splits = list(itertools.combinations(range(len(pooled)), n1))
    extreme = 0
    for chosen in splits:
        first = [pooled[i] for i in chosen]
        second = [pooled[i] for i in range(len(pooled)) if i not in chosen]
        extreme += abs(_pairwise_u(first, second) - n1 * n2 / 2) >= observed - 1e-9
    return extreme / len(splits)


def test_mann_whitney_exact_p_with_ties() -> None:
    # By hand: pooled 1 1 2 2 2 2 3 3 get average ranks 1.5 1.5 4.5 4.5 4.5 4.5 7.5 7.5;
    # the baseline's rank sum is 12, U = 12 - 10 = 2, 6 from the mean of 8. Of the C(8, 4) = 70
    # splits only {1, 1, 2, 2} (C(4, 2) = 6 ways, sum 12) and {2, 2, 3, 3} (6 ways, sum 24) are
    # that far out: p = 12/70. Ordinal ranks instead of average ones would give another p.
    baseline, candidate = [1, 1, 2, 2], [2, 2, 3, 3]
    assert _permutation_p(baseline, candidate) == pytest.approx(12 / 70)
    assert stats.mann_whitney_p(baseline, candidate) == pytest.approx(12 / 70)
    assert stats.mann_whitney_p([5, 5, 7], [5, 6, 7, 7]) == pytest.approx(
        _permutation_p([5, 5, 7], [5, 6, 7, 7])
    )


def test_mann_whitney_normal_approximation_corrects_for_ties() -> None:
    # C(20, 10) = 184,756 splits: above EXACT_SPLITS_MAX, so the normal approximation. By hand:
    # five 1s (ranks 1-5, average 3), ten 2s (6-15, 10.5), five 3s (16-20, 18); the baseline's
    # rank sum 5 * 3 + 5 * 10.5 = 67.5, U = 67.5 - 55 = 12.5, mean 50. Tie term
    # sum(t^3 - t) / (n (n - 1)) = (120 + 990 + 120) / 380; variance 10 * 10 / 12 * (21 - that)
    # = 148.03 (175 without the correction); z = (|12.5 - 50| - 0.5) / sqrt(variance).
    baseline, candidate = [1.0] * 5 + [2.0] * 5, [2.0] * 5 + [3.0] * 5
    variance = 100 / 12 * (21 - 1230 / 380)
    z = 37 / math.sqrt(variance)
    expected = math.erfc(z / math.sqrt(2))  # 0.00236; 0.00516 without the tie correction
    assert stats.mann_whitney_p(baseline, candidate) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(0.0023571, abs=1e-7)
