"""How a compared metric reads, the same in the console table and on the HTML page."""

from __future__ import annotations

import math

from harness.compare import stats
from harness.compare.model import MetricComparison


def comparison_cells(row: MetricComparison) -> list[str]:
    """scenario, metric, baseline, candidate, change, interval, p, verdict."""
    return [
        row.scenario,
        row.metric,
        sample_text(row.baseline.median, row.baseline.p95, row.baseline.n, row.unit),
        sample_text(row.candidate.median, row.candidate.p95, row.candidate.n, row.unit),
        change_text(row.relative_change),
        interval_text(row.interval, row.unit),
        "-" if row.p_value is None else f"{row.p_value:.2f}",
        row.change.value,
    ]


def sample_text(median: float | None, p95: float | None, n: int, unit: str) -> str:
    if median is None or p95 is None:
        return f"- ({n})"
    return f"{value_text(median, unit)} / {value_text(p95, unit)} ({n})"


def value_text(value: float, unit: str) -> str:
    return f"{value:,.1f}" if unit == "ms" else f"{value:.2%}"


def change_text(relative: float | None) -> str:
    if relative is None:
        return "-"
    if math.isinf(relative):
        return "+inf" if relative > 0 else "-inf"
    return f"{relative:+.0%}"


def interval_text(interval: stats.Interval | None, unit: str) -> str:
    if interval is None:
        return "-"
    if unit == "ms":
        return f"[{interval.low:+,.1f}, {interval.high:+,.1f}] ms"
    # Error rates are fractions: their difference reads best in percentage points.
    return f"[{interval.low * 100:+.2f}, {interval.high * 100:+.2f}] pp"


def rule_text(threshold: float, min_delta_ms: float) -> str:
    return (
        f"A metric regresses when the candidate's median is worse by more than {threshold:.0%} "
        f"and by more than {min_delta_ms:g} ms (for times), and the "
        f"{stats.CONFIDENCE:.0%} bootstrap interval of the difference of medians "
        f"({stats.RESAMPLES} resamples, fixed seed) excludes zero. One run a side is too few to "
        "judge. p is the two-sided Mann-Whitney U test, exact for small samples: with three runs "
        "a side it cannot fall below 0.10."
    )
