"""The suite report's two figures: downtime by fault class (measured per incident, projected
per year) and the projected annual downtime against the budget and the baseline."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from harness.report.html import figure_html
from harness.suite.projection import ClassProjection, Projection, format_duration

COLOURS = {"median": "#4c72b0", "p95": "#dd8452", "budget": "#c44e52", "baseline": "#8c8c8c"}


def _plot_per_incident(axes: Any, measured: list[ClassProjection]) -> None:
    positions = list(range(len(measured)))
    medians = [c.median_downtime_ms or 0.0 for c in measured]
    above = [
        max(0.0, (c.p95_downtime_ms or 0.0) - m) for c, m in zip(measured, medians, strict=True)
    ]
    axes.bar(positions, medians, color=COLOURS["median"], label="median")
    axes.errorbar(
        positions,
        medians,
        yerr=[[0.0] * len(medians), above],
        fmt="none",
        ecolor=COLOURS["p95"],
        capsize=6,
        label="up to p95",
    )
    for position, c in zip(positions, measured, strict=True):
        if c.downtime_budget_ms is not None:
            axes.hlines(
                c.downtime_budget_ms, position - 0.4, position + 0.4, colors=COLOURS["budget"]
            )
    axes.plot([], [], color=COLOURS["budget"], label="scenario downtime budget")
    tallest = max(
        [m + a for m, a in zip(medians, above, strict=True)]
        + [c.downtime_budget_ms or 0.0 for c in measured],
        default=0.0,
    )
    axes.set_ylim(0, tallest * 1.4 or 1)  # headroom for the legend
    axes.set_title("downtime per incident, measured")
    axes.set_ylabel("ms")
    axes.set_xticks(positions, [c.fault_class for c in measured], rotation=20, ha="right")
    axes.legend(fontsize="small")


def _plot_annual(axes: Any, modelled: list[ClassProjection], budget_s: float) -> None:
    """Log scale: seconds a year sit next to a budget of hours, and both must be readable."""
    floor = 0.01  # a class that cost nothing is drawn at the floor, labelled with its value
    positions = list(range(len(modelled)))
    medians = [max(floor, c.annual_s or 0.0) for c in modelled]
    axes.bar(positions, medians, color=COLOURS["median"], label="incidents/year x median")
    axes.scatter(
        positions,
        [max(floor, c.annual_p95_s or 0.0) for c in modelled],
        color=COLOURS["p95"],
        marker="_",
        s=400,
        label="x p95",
        zorder=3,
    )
    for position, c in zip(positions, modelled, strict=True):
        axes.annotate(
            format_duration(c.annual_s),
            (position, max(floor, c.annual_s or 0.0)),
            ha="center",
            va="bottom",
            fontsize="small",
        )
    axes.axhline(
        budget_s,
        color=COLOURS["budget"],
        linestyle="--",
        label=f"whole annual budget ({format_duration(budget_s)})",
    )
    axes.set_yscale("log")
    axes.set_ylim(floor / 2, budget_s * 300)  # room above the budget line for the legend
    axes.set_title("projected downtime a year, by fault class")
    axes.set_ylabel("s / year (log scale)")
    axes.set_xticks(positions, [c.fault_class for c in modelled], rotation=20, ha="right")
    axes.legend(fontsize="small", loc="upper right")


def class_figure(projection: Projection) -> str:
    figure = Figure(figsize=(11, 4), layout="constrained")
    per_incident, annual = figure.subplots(1, 2)
    _plot_per_incident(
        per_incident, [c for c in projection.classes if c.median_downtime_ms is not None]
    )
    _plot_annual(
        annual, [c for c in projection.classes if c.annual_s is not None], projection.budget_s
    )
    return figure_html(
        figure,
        alt="downtime by fault class: measured per incident and projected per year",
        caption="Left: downtime per incident measured in this suite (bar: median over the "
        "class's runs; whisker: p95; red tick: the tightest downtime_budget_ms of its "
        "scenarios). Right: each class's projected downtime a year (log scale) against the "
        "whole annual budget.",
    )


def projection_figure(projection: Projection) -> str:
    bars = [
        ("projected (median)", projection.annual_s, COLOURS["median"]),
        ("projected (p95)", projection.annual_p95_s, COLOURS["p95"]),
        ("budget", projection.budget_s, COLOURS["budget"]),
    ]
    if projection.baseline_s is not None:
        bars.append(("baseline (before)", projection.baseline_s, COLOURS["baseline"]))
    figure = Figure(figsize=(8, 0.6 * len(bars) + 1.2), layout="constrained")
    axes = figure.subplots()
    hours = [value / 3600 for _, value, _ in bars]
    axes.barh([label for label, _, _ in bars], hours, color=[c for _, _, c in bars])
    for index, (_, value, _) in enumerate(bars):
        axes.annotate(f" {format_duration(value)}", (value / 3600, index), va="center")
    axes.invert_yaxis()
    axes.set_xlabel("hours of downtime a year")
    axes.set_xlim(0, max(hours) * 1.25 or 1)
    axes.set_title("projected annual downtime")
    return figure_html(
        figure,
        alt="projected annual downtime against the budget and the baseline",
        caption="Sum over fault classes of incidents a year x measured downtime per incident.",
    )
