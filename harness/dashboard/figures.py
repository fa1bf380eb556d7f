"""The trend figure of a scenario page: failover, recovery and downtime, one panel each.

With two or more releases the x axis is the release (first-seen order), each run a point and
each release's median a line, so a regression shows as a step. With a single release there is
nothing to step between, so the x axis is the run's start time and the median a level line.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from harness.dashboard.trends import MetricTrend

RUN_COLOUR = "#4c78a8"
MEDIAN_COLOUR = "#1f2937"
LIMIT_COLOUR = "#c0392b"
PANEL_HEIGHT_IN = 2.4
FIGURE_WIDTH_IN = 11.0
# Points of one release are spread this far either side of its tick, so repeats do not overlap.
SPREAD = 0.18
EMPTY_PANEL_RATIO = 0.3
# A limit more than this many times the highest run is named in the legend, not drawn.
LIMIT_OFF_SCALE = 4.0
MAX_TIME_TICKS = 8

METRIC_TITLES = {
    "failover_ms": "failover (ms): leader lost -> new leader elected",
    "recovery_ms": "recovery (ms): fault -> service back to steady state",
    "downtime_ms": "downtime (ms): time with no successful request",
}


def trend_figure(trends: Sequence[MetricTrend]) -> Figure:
    # A metric no run measured (no failover in a follower kill) gets a short panel saying so.
    heights = [1.0 if trend.measured else EMPTY_PANEL_RATIO for trend in trends]
    figure = Figure(
        figsize=(FIGURE_WIDTH_IN, PANEL_HEIGHT_IN * sum(heights) + 0.3), layout="constrained"
    )
    axes_list = figure.subplots(
        len(trends), 1, squeeze=False, gridspec_kw={"height_ratios": heights}
    )[:, 0]
    by_release = len(trends[0].releases) > 1 if trends else False
    for axes, trend in zip(axes_list, trends, strict=True):
        axes.set_title(METRIC_TITLES.get(trend.metric, trend.metric), loc="left", fontsize=10)
        if not trend.measured:
            _say_not_measured(axes)
            continue
        axes.grid(axis="y", alpha=0.3)
        if by_release:
            _plot_by_release(axes, trend)
        else:
            _plot_by_time(axes, trend)
        _plot_limit(axes, trend)
        axes.set_ylim(bottom=0)
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return figure


def trend_caption(trends: Sequence[MetricTrend]) -> str:
    by_release = len(trends[0].releases) > 1 if trends else False
    shape = (
        "each point is one run and the dark line joins each release's median"
        if by_release
        else "runs in the order they started (one release so far); the dotted line is the median"
    )
    return f"{shape.capitalize()}; the dashed red line is the scenario's SLO limit."


def _say_not_measured(axes: Axes) -> None:
    axes.text(
        0.5,
        0.5,
        "not measured in these runs",
        ha="center",
        va="center",
        transform=axes.transAxes,
        color="#6b7280",
    )
    axes.set_yticks([])
    axes.set_xticks([])


def _plot_by_release(axes: Axes, trend: MetricTrend) -> None:
    position = {release: index for index, release in enumerate(trend.releases)}
    seen: dict[str, int] = {}
    counts = {release: 0 for release in trend.releases}
    for point in trend.points:
        counts[point.release] += 1
    xs, ys = [], []
    for point in trend.points:
        index = seen.get(point.release, 0)
        seen[point.release] = index + 1
        xs.append(position[point.release] + _offset(index, counts[point.release]))
        ys.append(point.value)
    axes.scatter(xs, ys, s=18, color=RUN_COLOUR, alpha=0.7, label="run", zorder=3)
    medians = [(position[release], value) for release, value in trend.medians.items()]
    axes.plot(
        [x for x, _ in medians],
        [y for _, y in medians],
        color=MEDIAN_COLOUR,
        marker="_",
        markersize=22,
        markeredgewidth=2.5,
        linewidth=1.2,
        label="median per release",
        zorder=4,
    )
    axes.set_xticks(range(len(trend.releases)), trend.releases)
    axes.set_xlim(-0.6, len(trend.releases) - 0.4)
    if len(trend.releases) > 6:
        axes.tick_params(axis="x", labelrotation=30)


def _offset(index: int, count: int) -> float:
    if count <= 1:
        return 0.0
    return -SPREAD + 2 * SPREAD * index / (count - 1)


def _plot_by_time(axes: Axes, trend: MetricTrend) -> None:
    """Runs in start order, evenly spaced: runs come in bursts (a suite, then nothing for a
    day), which a true time axis would squash into a few unreadable clumps."""
    positions = list(range(len(trend.points)))
    release = trend.releases[0] if trend.releases else ""
    axes.plot(
        positions,
        [point.value for point in trend.points],
        marker="o",
        markersize=4,
        linewidth=0.8,
        color=RUN_COLOUR,
        label=f"run ({release})",
    )
    median = trend.medians.get(release)
    if median is not None:
        axes.axhline(median, color=MEDIAN_COLOUR, linewidth=1, linestyle=":", label="median")
    step = max(1, len(positions) // MAX_TIME_TICKS)
    shown = positions[::step]
    axes.set_xticks(shown, [_short_time(trend.points[index].started_at) for index in shown])
    axes.set_xlim(-0.5, len(positions) - 0.5)
    axes.tick_params(axis="x", labelsize=8)
    axes.set_xlabel("run start (UTC)", fontsize=8)


def _plot_limit(axes: Axes, trend: MetricTrend) -> None:
    if trend.limit is None:
        return
    highest = max(point.value for point in trend.points)
    label = f"SLO <= {trend.limit:g} ms"
    if trend.limit > highest * LIMIT_OFF_SCALE:
        # Drawing a limit far above every run would squash the runs into a flat line at zero.
        axes.plot([], [], color=LIMIT_COLOUR, linestyle="--", label=f"{label} (above the plot)")
        return
    axes.axhline(trend.limit, color=LIMIT_COLOUR, linestyle="--", linewidth=1.2, label=label)
    axes.set_ylim(top=max(highest, trend.limit) * 1.12)


def _short_time(iso: str) -> str:
    """2026-11-24T18:56:24Z -> 11-24 18:56"""
    date, _, time = iso.partition("T")
    return f"{date[5:]} {time[:5]}".strip()
