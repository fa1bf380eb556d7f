from __future__ import annotations

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


def test_mann_whitney_handles_ties() -> None:
    p = stats.mann_whitney_p([1, 1, 2, 2], [2, 2, 3, 3])
    assert 0 < p < 1
