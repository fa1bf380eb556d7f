"""The suite's arithmetic: percentiles, availability over the suite, and the projected annual
downtime = sum over fault classes of incidents a year x measured downtime per incident."""

from __future__ import annotations

import pytest

from harness.suite.model import AvailabilityModel
from harness.suite.outcome import RunOutcome
from harness.suite.projection import (
    availability,
    format_duration,
    percentile,
    project,
)


def outcome(
    scenario: str,
    fault_class: str,
    downtime_ms: float | None,
    repeat: int = 1,
    load_duration_s: float = 10.0,
) -> RunOutcome:
    return RunOutcome(
        scenario=scenario,
        repeat=repeat,
        fault_class=fault_class,
        run_dir=None,
        verdict="valid",
        duration_s=20.0,
        load_duration_s=load_duration_s,
        metrics={"downtime_ms": downtime_ms},
    )


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0, 20.0, 30.0], 95) == pytest.approx(29.0)
    assert percentile([30.0, 10.0, 20.0], 0) == 10.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_availability_is_one_minus_downtime_over_load_time() -> None:
    runs = [
        outcome("a", "leader_loss", 500.0, load_duration_s=10),
        outcome("b", "network", 1500.0, load_duration_s=30),
        outcome("c", "clock", None, load_duration_s=100),  # not measured: left out entirely
    ]
    assert availability(runs) == pytest.approx(1 - 2.0 / 40)
    assert availability([outcome("c", "clock", None)]) is None


def test_projection_sums_frequency_times_measured_downtime() -> None:
    runs = [
        outcome("leader-kill", "leader_loss", 400.0, repeat=1),
        outcome("leader-kill", "leader_loss", 600.0, repeat=2),
        outcome("leader-kill", "leader_loss", 500.0, repeat=3),
        outcome("packet-loss", "network", 100.0),
        outcome("latency", "network", 300.0),
        outcome("skew", "clock", 0.0),
    ]
    model = AvailabilityModel(
        annual_downtime_budget_s=9000,
        baseline_annual_downtime_s=144000,
        incidents_per_year={"leader_loss": 24, "network": 52, "clock": 4},
    )
    projection = project(runs, model)
    by_class = {c.fault_class: c for c in projection.classes}
    leader = by_class["leader_loss"]
    assert (leader.runs, leader.median_downtime_ms) == (3, 500.0)
    assert leader.p95_downtime_ms == pytest.approx(590.0)
    assert leader.annual_s == pytest.approx(24 * 0.5)
    assert leader.annual_p95_s == pytest.approx(24 * 0.59)
    network = by_class["network"]
    assert network.median_downtime_ms == 200.0
    assert network.annual_s == pytest.approx(52 * 0.2)
    assert by_class["clock"].annual_s == 0.0
    assert projection.annual_s == pytest.approx(12.0 + 10.4)
    assert projection.annual_p95_s == pytest.approx(24 * 0.59 + 52 * 0.29)
    assert projection.within_budget
    assert (projection.budget_s, projection.baseline_s) == (9000, 144000)
    assert projection.unmeasured == [] and projection.unmodelled == []


def test_gaps_in_the_model_are_said_not_hidden() -> None:
    runs = [
        outcome("leader-kill", "leader_loss", 1000.0),
        outcome("broker", "broker", 50.0),  # no frequency stated: adds nothing, is named
        outcome("errored", "clock", None),  # stated, but nothing measured: named
    ]
    model = AvailabilityModel(
        annual_downtime_budget_s=10,
        incidents_per_year={"leader_loss": 20, "clock": 4, "maintenance": 0},
    )
    projection = project(runs, model)
    assert projection.annual_s == pytest.approx(20.0)
    assert not projection.within_budget
    assert projection.unmeasured == ["clock"]
    assert projection.unmodelled == ["broker"]
    text = "\n".join(projection.explanation())
    assert "leader_loss: 20/year x 1000.0 ms = 20.0 s" in text
    assert "not measured by this suite, so not in the total: clock" in text
    assert "given no frequency in the model, so not in the total: broker" in text
    assert "against a budget of 10.0 s" in text


def test_durations_read_as_hours_minutes_or_seconds() -> None:
    assert format_duration(9000) == "2.50 h"
    assert format_duration(144000) == "40.00 h"
    assert format_duration(90) == "1.5 min"
    assert format_duration(12.34) == "12.3 s"
    assert format_duration(None) == "-"
