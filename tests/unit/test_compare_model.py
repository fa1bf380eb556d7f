from __future__ import annotations

from pathlib import Path

from harness.catalog import RunEntry
from harness.compare.model import Change, Rule, compare_metric, compare_runs

RULE = Rule(threshold=0.2, min_delta_ms=25)


def judge(baseline: list[float], candidate: list[float], unit: str = "ms") -> Change:
    return compare_metric("s", "failover_ms", unit, baseline, candidate, RULE).change


def test_an_obvious_slowdown_is_a_regression() -> None:
    assert judge([400, 420, 390], [950, 990, 1010]) is Change.REGRESSION


def test_an_obvious_speedup_is_an_improvement() -> None:
    assert judge([950, 990, 1010], [400, 420, 390]) is Change.IMPROVEMENT


def test_identical_samples_are_unchanged() -> None:
    values = [400.0, 452.0, 377.0]
    result = compare_metric("s", "failover_ms", "ms", values, values, RULE)
    assert result.change is Change.UNCHANGED
    assert result.relative_change == 0


def test_one_run_a_side_is_too_few() -> None:
    result = compare_metric("s", "failover_ms", "ms", [400], [4000], RULE)
    assert result.change is Change.TOO_FEW_RUNS
    assert result.interval is None
    assert result.relative_change == 9.0  # still shown, never judged


def test_no_value_is_not_measured() -> None:
    assert judge([], [400, 410]) is Change.NOT_MEASURED


def test_a_large_relative_change_of_a_few_milliseconds_is_not_a_regression() -> None:
    """10 ms to 20 ms is +100 %, but below the 25 ms floor: noise for a failover."""
    assert judge([10, 11, 9], [20, 21, 19]) is Change.UNCHANGED


def test_a_small_relative_change_is_not_a_regression() -> None:
    assert judge([1000, 1010, 990], [1100, 1110, 1090]) is Change.UNCHANGED  # +10 %


def test_a_big_shift_inside_the_noise_is_inconclusive() -> None:
    """The medians differ by far more than the threshold, but the runs overlap so much that
    the bootstrap interval still contains zero."""
    assert judge([100, 1000, 2000], [300, 1500, 2100]) is Change.INCONCLUSIVE


def test_the_absolute_floor_does_not_apply_to_error_rates() -> None:
    assert judge([0.010, 0.011, 0.012], [0.050, 0.052, 0.049], unit="ratio") is Change.REGRESSION


def test_from_zero_errors_to_some_is_an_unbounded_change() -> None:
    result = compare_metric("s", "error_rate", "ratio", [0, 0, 0], [0.02, 0.03, 0.02], RULE)
    assert result.relative_change == float("inf")
    assert result.change is Change.REGRESSION


def entry(
    scenario: str, release: str, failover: float | None, status: str = "finished"
) -> RunEntry:
    return RunEntry(
        path=Path("/results") / scenario / f"{release}-{failover}",
        scenario=scenario,
        release=release,
        harness_commit=None,
        target_version=None,
        started_at="2026-11-24T10:00:00Z",
        status=status,
        verdict="valid",
        duration_s=None,
        metrics={"failover_ms": failover, "recovery_ms": 500.0, "error_rate": 0.0},
        checks={},
        failures=[],
    )


def test_compare_runs_pairs_scenarios_and_skips_one_sided_ones() -> None:
    fast = [entry("leader-kill", "fast", v) for v in (400, 410, 390)]
    fast.append(entry("follower-kill", "fast", 10))
    slow = [entry("leader-kill", "slow", v) for v in (900, 950, 1000)]
    slow.append(entry("leader-kill", "slow", None))  # could not measure: left out
    slow.append(entry("leader-kill", "slow", 5000, status="aborted"))  # not a finished run
    comparison = compare_runs("fast", "slow", fast, slow)
    assert comparison.scenarios == ["leader-kill"]
    assert comparison.skipped == {"follower-kill": "no finished runs of release slow"}
    by_metric = {m.metric: m for m in comparison.metrics}
    assert by_metric["failover_ms"].change is Change.REGRESSION
    assert by_metric["failover_ms"].candidate.n == 3
    assert by_metric["recovery_ms"].change is Change.UNCHANGED
    assert by_metric["downtime_ms"].change is Change.NOT_MEASURED
    assert by_metric["error_rate"].change is Change.UNCHANGED
    assert [m.metric for m in comparison.regressions] == ["failover_ms"]


def test_compare_runs_only_the_scenarios_asked_for() -> None:
    fast = [entry(s, "fast", 400) for s in ("a", "b") for _ in range(2)]
    slow = [entry(s, "slow", 400) for s in ("a", "b") for _ in range(2)]
    assert compare_runs("fast", "slow", fast, slow, ["b"]).scenarios == ["b"]
    assert compare_runs("fast", "slow", fast, slow, ["c"]).skipped == {
        "c": "no finished runs of release fast or slow"
    }
