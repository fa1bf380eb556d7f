"""The HTML comparison of two releases: the verdict table, and for each scenario the values of
both releases side by side (a box over the individual runs), so a reader sees the spread the
statistics were computed from, not only the medians."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from harness.compare.model import Change, Comparison, MetricComparison
from harness.compare.text import comparison_cells, rule_text
from harness.report.html import Raw, escape, figure_html, page, table_html
from harness.store.atomic import write_text_atomically

BASELINE_COLOUR = "#4c72b0"
CANDIDATE_COLOUR = "#dd8452"
# Points are spread sideways a little so that equal values stay visible; fixed for stable pages.
JITTER_SEED = 7
# Which of the shared verdict colours each kind of change wears.
BADGE_KIND = {
    Change.REGRESSION: "invalid",
    Change.IMPROVEMENT: "valid",
    Change.UNCHANGED: "valid",
    Change.INCONCLUSIVE: "unknown",
    Change.TOO_FEW_RUNS: "unknown",
    Change.NOT_MEASURED: "unknown",
}
HEADERS = (
    "scenario",
    "metric",
    "baseline median / p95 (n)",
    "candidate median / p95 (n)",
    "change",
    "95% interval of the difference",
    "p (Mann-Whitney)",
    "verdict",
)


def write_comparison_html(comparison: Comparison, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, comparison_page(comparison))
    return path


def comparison_page(comparison: Comparison) -> str:
    regressions = comparison.regressions
    overall = _badge("invalid", f"{len(regressions)} regression(s)", large=True)
    named = ", ".join(f"{m.scenario} {m.metric}" for m in regressions)
    if not regressions:
        overall, named = _badge("valid", "no regression", large=True), ""
    rows = []
    for metric in comparison.metrics:
        *cells, verdict = comparison_cells(metric)
        rows.append([*cells, Raw(_badge(BADGE_KIND[metric.change], verdict))])
    rule = comparison.rule
    sections = [
        f"<p>{overall} {escape(named)}</p>",
        f'<p class="note">{escape(rule_text(rule.threshold, rule.min_delta_ms))}</p>',
        table_html(
            list(HEADERS),
            rows,
            ["fail" if m.change is Change.REGRESSION else "" for m in comparison.metrics],
        ),
    ]
    if comparison.skipped:
        skipped = "".join(
            f"<li>{escape(scenario)}: {escape(reason)}</li>"
            for scenario, reason in comparison.skipped.items()
        )
        sections.append(f"<h2>Not compared</h2><ul>{skipped}</ul>")
    for scenario in comparison.scenarios:
        metrics = [m for m in comparison.metrics if m.scenario == scenario]
        sections.append(f"<h2>{escape(scenario)}</h2>")
        sections.append(
            figure_html(
                scenario_figure(comparison, metrics),
                alt=f"{scenario}: each run's recovery figures, {comparison.baseline} "
                f"against {comparison.candidate}",
                caption=_caption(metrics),
            )
        )
    return page(
        f"{comparison.candidate} against {comparison.baseline}",
        "\n".join(sections),
        subtitle=f"release comparison: baseline {comparison.baseline}, "
        f"candidate {comparison.candidate}",
    )


def _badge(kind: str, text: str, large: bool = False) -> str:
    """The shared badge style, with this page's words (regression, unchanged...) on it."""
    size = " large" if large else ""
    return f'<span class="badge {kind}{size}">{escape(text)}</span>'


def scenario_figure(comparison: Comparison, metrics: list[MetricComparison]) -> Figure:
    figure = Figure(figsize=(3.2 * len(metrics), 3.6), layout="constrained")
    axes = figure.subplots(1, len(metrics), squeeze=False)[0]
    jitter = np.random.default_rng(JITTER_SEED)
    labels = [comparison.baseline, comparison.candidate]
    for axis, metric in zip(axes, metrics, strict=True):
        samples = [list(metric.baseline.values), list(metric.candidate.values)]
        scale = 1.0 if metric.unit == "ms" else 100.0
        scaled = [[value * scale for value in sample] for sample in samples]
        shown = [sample if sample else [np.nan] for sample in scaled]
        axis.boxplot(shown, widths=0.5, showfliers=False, medianprops={"color": "black"})
        for position, (sample, colour) in enumerate(
            zip(scaled, (BASELINE_COLOUR, CANDIDATE_COLOUR), strict=True), start=1
        ):
            offsets = jitter.uniform(-0.12, 0.12, len(sample))
            axis.scatter(position + offsets, sample, color=colour, s=28, zorder=3)
        axis.set_xticks([1, 2], labels)
        unit = "ms" if metric.unit == "ms" else "%"
        axis.set_title(
            f"{metric.metric}: {metric.change.value}", fontsize=10, color=_colour(metric)
        )
        axis.set_ylabel(unit)
        highest = max((value for sample in scaled for value in sample), default=1.0)
        # Headroom above the highest run, so its point is not cut in half by the frame.
        axis.set_ylim(0, highest * 1.12 or 1.0)
        axis.grid(axis="y", alpha=0.3)
    return figure


def _colour(metric: MetricComparison) -> str:
    return {Change.REGRESSION: "#c0392b", Change.IMPROVEMENT: "#27ae60"}.get(metric.change, "black")


def _caption(metrics: list[MetricComparison]) -> str:
    counts = "; ".join(f"{m.metric}: {m.baseline.n} and {m.candidate.n} runs" for m in metrics)
    return (
        "One point per run (baseline left, candidate right); the box spans the quartiles, "
        f"the line is the median. Measured values: {counts}."
    )
