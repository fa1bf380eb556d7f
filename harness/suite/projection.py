"""The suite's arithmetic: availability over the suite, and the projected annual downtime.

The model is deliberately simple and printed with every report: each fault class has a stated
number of incidents a year; each incident costs the downtime measured for that class in this
suite (the median over its runs, and again the p95 for a pessimistic figure); the projection
is the sum over classes of incidents x downtime, set against the annual budget and the stated
"before" baseline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.suite.model import AvailabilityModel
from harness.suite.outcome import RunOutcome

HOUR_S = 3600.0


def percentile(values: Sequence[float], percent: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), for small samples."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * percent / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def availability(outcomes: Sequence[RunOutcome]) -> float | None:
    """1 - downtime / load time over the runs whose downtime was measured (None: no such run).
    Load time is each run's scheduled load duration: the time order flow was offered."""
    measured = [o for o in outcomes if o.downtime_ms is not None and o.load_duration_s > 0]
    load_s = sum(o.load_duration_s for o in measured)
    if not measured or load_s <= 0:
        return None
    downtime_s = sum((o.downtime_ms or 0.0) / 1000 for o in measured)
    return max(0.0, 1 - downtime_s / load_s)


@dataclass(frozen=True)
class ClassProjection:
    fault_class: str
    incidents_per_year: float | None  # None: the model states no frequency for this class
    runs: int  # runs whose downtime was measured
    median_downtime_ms: float | None
    p95_downtime_ms: float | None
    downtime_budget_ms: float | None  # the tightest per-incident budget of its scenarios

    def _annual_s(self, downtime_ms: float | None) -> float | None:
        if self.incidents_per_year is None or downtime_ms is None:
            return None
        return self.incidents_per_year * downtime_ms / 1000

    @property
    def annual_s(self) -> float | None:
        return self._annual_s(self.median_downtime_ms)

    @property
    def annual_p95_s(self) -> float | None:
        return self._annual_s(self.p95_downtime_ms)


@dataclass(frozen=True)
class Projection:
    classes: list[ClassProjection]
    budget_s: float
    baseline_s: float | None

    @property
    def annual_s(self) -> float:
        return sum(c.annual_s or 0.0 for c in self.classes)

    @property
    def annual_p95_s(self) -> float:
        return sum(c.annual_p95_s or 0.0 for c in self.classes)

    @property
    def unmeasured(self) -> list[str]:
        """Classes the model expects incidents of, that no run of this suite measured."""
        return [
            c.fault_class
            for c in self.classes
            if c.incidents_per_year and c.median_downtime_ms is None
        ]

    @property
    def unmodelled(self) -> list[str]:
        """Classes measured here that the model states no frequency for (they add nothing)."""
        return [c.fault_class for c in self.classes if c.incidents_per_year is None]

    @property
    def within_budget(self) -> bool:
        return self.annual_s <= self.budget_s

    def explanation(self) -> list[str]:
        """The model in words, one line each: printed in the console and the report."""
        lines = [
            "projected annual downtime = sum over fault classes of incidents a year x downtime "
            "per incident; downtime per incident = the median (and, pessimistic, the p95) of "
            "the downtime_ms measured in this suite's runs of that class"
        ]
        for c in self.classes:
            if c.annual_s is None:
                continue
            runs = f"{c.runs} run" if c.runs == 1 else f"{c.runs} runs"
            lines.append(
                f"{c.fault_class}: {c.incidents_per_year:g}/year x {c.median_downtime_ms:.1f} ms "
                f"= {c.annual_s:.1f} s (p95: {c.annual_p95_s or 0.0:.1f} s, {runs})"
            )
        lines.append(
            f"total: {format_duration(self.annual_s)} (p95 {format_duration(self.annual_p95_s)})"
            f" against a budget of {format_duration(self.budget_s)}"
            + (f"; baseline {format_duration(self.baseline_s)}" if self.baseline_s else "")
        )
        if self.unmeasured:
            lines.append(
                "not measured by this suite, so not in the total: " + ", ".join(self.unmeasured)
            )
        if self.unmodelled:
            lines.append(
                "measured but given no frequency in the model, so not in the total: "
                + ", ".join(self.unmodelled)
            )
        return lines


def _tightest(budgets: Sequence[float | None]) -> float | None:
    stated = [b for b in budgets if b is not None]
    return min(stated) if stated else None


def project(outcomes: Sequence[RunOutcome], model: AvailabilityModel) -> Projection:
    by_class: dict[str, list[RunOutcome]] = {}
    for outcome in outcomes:
        by_class.setdefault(outcome.fault_class, []).append(outcome)
    frequencies: Mapping[str, float] = model.incidents_per_year
    classes = []
    for fault_class in [*frequencies, *(c for c in by_class if c not in frequencies)]:
        runs = by_class.get(fault_class, [])
        downtimes = [o.downtime_ms for o in runs if o.downtime_ms is not None]
        classes.append(
            ClassProjection(
                fault_class=fault_class,
                incidents_per_year=frequencies.get(fault_class),
                runs=len(downtimes),
                median_downtime_ms=percentile(downtimes, 50) if downtimes else None,
                p95_downtime_ms=percentile(downtimes, 95) if downtimes else None,
                downtime_budget_ms=_tightest([o.downtime_budget_ms for o in runs]),
            )
        )
    return Projection(
        classes=classes,
        budget_s=model.annual_downtime_budget_s,
        baseline_s=model.baseline_annual_downtime_s,
    )


def format_duration(seconds: float | None) -> str:
    """Seconds for a person: '2.5 h', '12.3 min', '4.2 s'."""
    if seconds is None:
        return "-"
    if seconds >= HOUR_S:
        return f"{seconds / HOUR_S:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"
