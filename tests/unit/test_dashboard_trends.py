from __future__ import annotations

from pathlib import Path

import pytest

from harness.catalog import RunEntry
from harness.dashboard.trends import (
    UNLABELLED,
    metric_trend,
    release_order,
    scenario_trends,
    slo_limits,
    summarize_releases,
)
from harness.verdicts import Verdict
from tests.summaries import a_summary, an_slo


def entry(
    started_at: str,
    release: str | None,
    scenario: str = "leader-kill",
    verdict: str = "valid",
    **metrics: float | None,
) -> RunEntry:
    return RunEntry(
        path=Path(f"/results/{scenario}/{started_at}"),
        scenario=scenario,
        release=release,
        harness_commit=None,
        target_version=None,
        started_at=started_at,
        status="finished",
        verdict=verdict,
        duration_s=20.0,
        metrics=dict(metrics),
        checks={},
        failures=[],
    )


def test_releases_are_ordered_by_their_first_run_not_by_name() -> None:
    entries = [
        entry("2026-11-03T00:00:00Z", "v1.0"),
        entry("2026-11-01T00:00:00Z", "v2.0"),
        entry("2026-11-02T00:00:00Z", None),
        entry("2026-11-04T00:00:00Z", "v2.0"),
    ]
    assert release_order(entries) == ["v2.0", UNLABELLED, "v1.0"]


def test_trend_keeps_every_run_and_takes_the_median_per_release() -> None:
    entries = [
        entry("2026-11-01T00:00:01Z", "fast", failover_ms=100),
        entry("2026-11-01T00:00:02Z", "fast", failover_ms=300),
        entry("2026-11-01T00:00:03Z", "fast", failover_ms=200),
        entry("2026-11-02T00:00:01Z", "slow", failover_ms=900),
        entry("2026-11-02T00:00:02Z", "slow", failover_ms=None),  # no failover measured
    ]
    trend = metric_trend(list(reversed(entries)), "failover_ms", limit=800)
    assert trend.releases == ["fast", "slow"]
    assert [point.value for point in trend.points] == [100, 300, 200, 900]
    assert trend.medians == {"fast": 200, "slow": 900}
    assert trend.limit == 800
    assert trend.measured


def test_a_release_without_values_stays_on_the_axis_but_has_no_median() -> None:
    entries = [
        entry("2026-11-01T00:00:00Z", "a", recovery_ms=10),
        entry("2026-11-02T00:00:00Z", "b", recovery_ms=None),
    ]
    trend = metric_trend(entries, "recovery_ms")
    assert trend.releases == ["a", "b"]
    assert trend.medians == {"a": 10}


def test_a_metric_no_run_measured_is_reported_as_not_measured() -> None:
    trends = scenario_trends([entry("2026-11-01T00:00:00Z", None, downtime_ms=5)], {})
    by_metric = {trend.metric: trend for trend in trends}
    assert set(by_metric) == {"failover_ms", "recovery_ms", "downtime_ms"}
    assert not by_metric["failover_ms"].measured
    assert by_metric["downtime_ms"].measured


def test_releases_summary_groups_by_release_then_scenario_newest_release_first() -> None:
    entries = [
        entry("2026-11-01T00:00:00Z", "v1", "leader-kill", "valid", failover_ms=100),
        entry("2026-11-01T00:01:00Z", "v1", "leader-kill", "invalid", failover_ms=300),
        entry("2026-11-01T00:02:00Z", "v1", "follower-kill", "valid", downtime_ms=4),
        entry("2026-11-02T00:00:00Z", "v2", "leader-kill", "unknown", failover_ms=900),
    ]
    v2, v1 = summarize_releases(entries)
    assert (v2.release, v2.runs, v2.passed) == ("v2", 1, 0)
    assert (v1.release, v1.runs, v1.passed, v1.pass_rate) == ("v1", 3, 2, pytest.approx(2 / 3))
    assert (v1.first_run_at, v1.last_run_at) == ("2026-11-01T00:00:00Z", "2026-11-01T00:02:00Z")
    follower, leader = v1.scenarios
    assert (follower.scenario, follower.runs, follower.pass_rate) == ("follower-kill", 1, 1.0)
    assert follower.medians["failover_ms"] is None
    assert leader.medians["failover_ms"] == 200
    assert leader.pass_rate == 0.5


def test_slo_limits_come_from_the_summary_slos() -> None:
    summary = a_summary(
        slos=[
            an_slo("failover_ms", 400.0, Verdict.VALID, at_most=800),
            an_slo("error_rate", 0.01, Verdict.VALID, at_least=0, at_most=0.05),
            an_slo("success_rate", 1.0, Verdict.VALID, at_least=0.99),
        ]
    )
    assert slo_limits(summary) == {"failover_ms": 800.0, "error_rate": 0.05}
    assert slo_limits(a_summary()) == {}
