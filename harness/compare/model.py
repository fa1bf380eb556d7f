"""Comparing two releases run by run: which recovery figures got worse, and by how much.

A metric is a regression only when three things hold at once: the candidate's median is worse
by more than the relative threshold, by more than the absolute floor (for milliseconds, so that
a 10 ms failover becoming 14 ms is not "40 % worse"), and the bootstrap interval of the
difference of medians excludes zero. A single run on either side proves nothing: "too few runs".
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from harness.catalog import RunEntry
from harness.compare import stats

# Recovery figures compared, each with its unit; for all of them, higher is worse.
COMPARED_METRICS: tuple[tuple[str, str], ...] = (
    ("failover_ms", "ms"),
    ("recovery_ms", "ms"),
    ("downtime_ms", "ms"),
    ("error_rate", "ratio"),
)
MIN_RUNS = 2


class Change(enum.Enum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    UNCHANGED = "unchanged"
    INCONCLUSIVE = "inconclusive"  # a large shift whose interval still contains zero
    TOO_FEW_RUNS = "too few runs"
    NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Rule:
    threshold: float = 0.2  # relative change of the median
    min_delta_ms: float = 25.0  # absolute change of the median, for millisecond metrics


@dataclass(frozen=True)
class Sample:
    values: tuple[float, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def median(self) -> float | None:
        return stats.median(self.values) if self.values else None

    @property
    def p95(self) -> float | None:
        return stats.percentile(self.values, 95) if self.values else None


@dataclass(frozen=True)
class MetricComparison:
    scenario: str
    metric: str
    unit: str
    baseline: Sample
    candidate: Sample
    change: Change
    relative_change: float | None  # (candidate - baseline) / baseline, of the medians
    interval: stats.Interval | None  # of candidate median - baseline median
    p_value: float | None  # two-sided Mann-Whitney U
    reason: str


@dataclass(frozen=True)
class Comparison:
    baseline: str
    candidate: str
    rule: Rule
    metrics: list[MetricComparison]
    # Scenarios asked for or run by only one release, with why they were left out.
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def regressions(self) -> list[MetricComparison]:
        return [m for m in self.metrics if m.change is Change.REGRESSION]

    @property
    def scenarios(self) -> list[str]:
        return list(dict.fromkeys(m.scenario for m in self.metrics))


def compare_runs(
    baseline: str,
    candidate: str,
    baseline_runs: Sequence[RunEntry],
    candidate_runs: Sequence[RunEntry],
    scenarios: Iterable[str] | None = None,
    rule: Rule = Rule(),
) -> Comparison:
    """Every scenario run by both releases (or those asked for), every compared metric."""
    by_baseline = _finished_by_scenario(baseline_runs)
    by_candidate = _finished_by_scenario(candidate_runs)
    wanted = list(scenarios) if scenarios else sorted(set(by_baseline) | set(by_candidate))
    compared, skipped = [], {}
    for scenario in wanted:
        missing = [
            label
            for label, runs in ((baseline, by_baseline), (candidate, by_candidate))
            if scenario not in runs
        ]
        if missing:
            skipped[scenario] = f"no finished runs of release {' or '.join(missing)}"
            continue
        for metric, unit in COMPARED_METRICS:
            compared.append(
                compare_metric(
                    scenario,
                    metric,
                    unit,
                    _values(by_baseline[scenario], metric),
                    _values(by_candidate[scenario], metric),
                    rule,
                )
            )
    return Comparison(baseline, candidate, rule, compared, skipped)


def compare_metric(
    scenario: str,
    metric: str,
    unit: str,
    baseline_values: Sequence[float],
    candidate_values: Sequence[float],
    rule: Rule,
) -> MetricComparison:
    base, cand = Sample(tuple(baseline_values)), Sample(tuple(candidate_values))

    def result(
        change: Change,
        reason: str,
        relative: float | None = None,
        interval: stats.Interval | None = None,
        p_value: float | None = None,
    ) -> MetricComparison:
        return MetricComparison(
            scenario, metric, unit, base, cand, change, relative, interval, p_value, reason
        )

    if base.n == 0 or cand.n == 0:
        return result(Change.NOT_MEASURED, "no measured value on one side")
    relative = _relative(base.median, cand.median)
    if base.n < MIN_RUNS or cand.n < MIN_RUNS:
        return result(
            Change.TOO_FEW_RUNS, f"needs at least {MIN_RUNS} runs a side", relative=relative
        )
    interval = stats.bootstrap_median_difference(base.values, cand.values)
    p_value = stats.mann_whitney_p(base.values, cand.values)
    change, reason = _judge(_difference(base, cand), relative, interval, unit, rule)
    return result(change, reason, relative, interval, p_value)


def _judge(
    delta: float, relative: float, interval: stats.Interval, unit: str, rule: Rule
) -> tuple[Change, str]:
    large_relative = abs(relative) > rule.threshold
    large_absolute = unit != "ms" or abs(delta) > rule.min_delta_ms
    if not (large_relative and large_absolute):
        limit = f"{rule.threshold:.0%}" + (f" and {rule.min_delta_ms:g} ms" if unit == "ms" else "")
        return Change.UNCHANGED, f"median moved less than {limit}"
    if not interval.excludes_zero():
        return Change.INCONCLUSIVE, "the interval of the difference contains zero"
    if delta > 0:
        return Change.REGRESSION, "worse beyond the threshold, interval excludes zero"
    return Change.IMPROVEMENT, "better beyond the threshold, interval excludes zero"


def _difference(base: Sample, cand: Sample) -> float:
    assert base.median is not None and cand.median is not None
    return cand.median - base.median


def _relative(base: float | None, cand: float | None) -> float:
    assert base is not None and cand is not None
    if base == 0:
        # From nothing to something is an unbounded change; nothing to nothing is none.
        return 0.0 if cand == 0 else math.copysign(math.inf, cand)
    return (cand - base) / abs(base)


def _finished_by_scenario(runs: Iterable[RunEntry]) -> dict[str, list[RunEntry]]:
    grouped: dict[str, list[RunEntry]] = {}
    for run in runs:
        if run.status == "finished":
            grouped.setdefault(run.scenario, []).append(run)
    return grouped


def _values(runs: Iterable[RunEntry], metric: str) -> list[float]:
    """The measured values; a run that could not measure the metric does not count."""
    values = []
    for run in runs:
        value = run.metrics.get(metric)
        if value is not None and math.isfinite(value):
            values.append(value)
    return values
