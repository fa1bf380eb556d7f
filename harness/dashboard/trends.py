"""What the dashboard plots and tabulates, computed from catalog entries as pure functions.

Releases are ordered by when they were first seen (their oldest run), which is the order they
were built in; runs without a release label are grouped under UNLABELLED so they still show.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.catalog import RunEntry
from harness.store.summary import RunSummary

TREND_METRICS = ("failover_ms", "recovery_ms", "downtime_ms")
UNLABELLED = "unlabelled"


def release_label(entry: RunEntry) -> str:
    return entry.release or UNLABELLED


def oldest_first(entries: Iterable[RunEntry]) -> list[RunEntry]:
    # The path ends in the microsecond stamp: it orders runs started in the same second.
    return sorted(entries, key=lambda entry: (entry.started_at, str(entry.path)))


def release_order(entries: Iterable[RunEntry]) -> list[str]:
    """Release labels in the order their first run happened."""
    order: dict[str, None] = {}
    for entry in oldest_first(entries):
        order.setdefault(release_label(entry), None)
    return list(order)


@dataclass(frozen=True)
class TrendPoint:
    release: str
    started_at: str
    value: float
    run_path: Path


@dataclass(frozen=True)
class MetricTrend:
    """One metric of one scenario across releases: every run's value and each release's median."""

    metric: str
    releases: list[str]  # the x axis, first-seen order (releases without a value included)
    points: list[TrendPoint]  # oldest first; runs that did not measure the metric are left out
    medians: dict[str, float]  # release -> median of its points
    limit: float | None  # the scenario's SLO upper bound, when it has one

    @property
    def measured(self) -> bool:
        return bool(self.points)


def metric_trend(
    entries: Sequence[RunEntry], metric: str, limit: float | None = None
) -> MetricTrend:
    ordered = oldest_first(entries)
    points = [
        TrendPoint(release_label(entry), entry.started_at, value, entry.path)
        for entry in ordered
        if (value := entry.metrics.get(metric)) is not None
    ]
    by_release: dict[str, list[float]] = {}
    for point in points:
        by_release.setdefault(point.release, []).append(point.value)
    releases = release_order(ordered)
    medians = {
        release: statistics.median(by_release[release])
        for release in releases
        if release in by_release
    }
    return MetricTrend(metric, releases, points, medians, limit)


def scenario_trends(entries: Sequence[RunEntry], limits: Mapping[str, float]) -> list[MetricTrend]:
    """The failover, recovery and downtime trends of one scenario's runs."""
    return [metric_trend(entries, metric, limits.get(metric)) for metric in TREND_METRICS]


def slo_limits(summary: RunSummary) -> dict[str, float]:
    """metric -> upper limit, from a run summary's SLOs (those with an upper bound)."""
    return {slo.metric: slo.bound.max for slo in summary.slos if slo.bound.max is not None}


def passed(entry: RunEntry) -> bool:
    return entry.passed


def median_of(entries: Iterable[RunEntry], metric: str) -> float | None:
    values = [value for entry in entries if (value := entry.metrics.get(metric)) is not None]
    return statistics.median(values) if values else None


@dataclass(frozen=True)
class ScenarioStats:
    """One scenario's runs within one release."""

    scenario: str
    runs: int
    passed: int
    medians: dict[str, float | None]  # TREND_METRICS -> median over the runs that measured it

    @property
    def pass_rate(self) -> float:
        return self.passed / self.runs if self.runs else 0.0


@dataclass(frozen=True)
class ReleaseSummary:
    release: str
    first_run_at: str
    last_run_at: str
    scenarios: list[ScenarioStats]  # by scenario name

    @property
    def runs(self) -> int:
        return sum(stats.runs for stats in self.scenarios)

    @property
    def passed(self) -> int:
        return sum(stats.passed for stats in self.scenarios)

    @property
    def pass_rate(self) -> float:
        return self.passed / self.runs if self.runs else 0.0


def summarize_releases(entries: Sequence[RunEntry]) -> list[ReleaseSummary]:
    """Per release (newest first): pass rate and per-scenario medians."""
    by_release: dict[str, list[RunEntry]] = {}
    for entry in oldest_first(entries):
        by_release.setdefault(release_label(entry), []).append(entry)
    summaries = [_release_summary(release, runs) for release, runs in by_release.items()]
    return summaries[::-1]


def _release_summary(release: str, runs: list[RunEntry]) -> ReleaseSummary:
    by_scenario: dict[str, list[RunEntry]] = {}
    for entry in runs:
        by_scenario.setdefault(entry.scenario, []).append(entry)
    scenarios = [
        ScenarioStats(
            scenario=scenario,
            runs=len(scenario_runs),
            passed=sum(1 for entry in scenario_runs if passed(entry)),
            medians={metric: median_of(scenario_runs, metric) for metric in TREND_METRICS},
        )
        for scenario, scenario_runs in sorted(by_scenario.items())
    ]
    return ReleaseSummary(release, runs[0].started_at, runs[-1].started_at, scenarios)
