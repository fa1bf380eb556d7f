"""The run report's matplotlib figures: the timeline (leader band, throughput, latency, with
every fault window shaded) and the latency percentiles per phase."""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from harness.report.request_pieces import PointSampler, Requests, outcome_counts, pieces_of
from harness.report.run_data import (
    NS_PER_S,
    FaultWindow,
    LeaderInterval,
    PhasePercentiles,
    latencies_ms,
)

OUTCOME_COLOURS = {
    "acked": "#2e7d32",
    "rejected": "#8d8d8d",
    "error": "#c62828",
    "unknown": "#ef6c00",
}
FAULT_COLOUR = "#d32f2f"
PHASE_COLOURS = {"before": "#5c8fd6", "during": "#d9534f", "after": "#4caf7d"}
# Node colours stay clear of the reds used for faults and errors.
NODE_PALETTE = ("#1f77b4", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f")
FONT_SIZE = 10


def timeline_figure(
    requests: Requests | None,
    origin_ns: int,
    throughput: pd.DataFrame,
    leaders: list[LeaderInterval],
    windows: list[FaultWindow],
    nodes: list[str],
    end_ns: int,
) -> Figure:
    """Three panels sharing the x axis (seconds from load start): which node led when,
    requests/s by outcome, and per-request latency (log scale) coloured by outcome."""
    # A bare Figure, not pyplot: no global state, no display backend needed.
    fig = Figure(figsize=(13, 8.2))
    band, rate, latency = fig.subplots(
        3, 1, sharex=True, gridspec_kw={"height_ratios": [1.1, 2.2, 3.2], "hspace": 0.12}
    )
    end_s = (end_ns - origin_ns) / NS_PER_S
    _leader_band(band, leaders, nodes, origin_ns)
    _throughput(rate, throughput)
    _latency(latency, requests, origin_ns)
    for axes in (band, rate, latency):
        _shade_faults(axes, windows, origin_ns, end_s)
    _label_faults(band, windows, origin_ns)
    latency.set_xlabel("seconds from load start")
    latency.set_xlim(left=min(0.0, latency.get_xlim()[0]), right=end_s)
    return fig


def _seconds(ns: int, origin_ns: int) -> float:
    return (ns - origin_ns) / NS_PER_S


def _leader_band(axes: Axes, leaders: list[LeaderInterval], nodes: list[str], origin: int) -> None:
    """One row per engine node, filled while it reported itself leader: two leaders at once
    (an isolated old leader that has not noticed yet) show up as overlapping bars."""
    nodes = nodes or sorted({interval.node for interval in leaders})
    colours = {node: NODE_PALETTE[i % len(NODE_PALETTE)] for i, node in enumerate(nodes)}
    rows = {node: len(nodes) - 1 - i for i, node in enumerate(nodes)}  # first node on top
    for interval in leaders:
        start = _seconds(interval.start_ns, origin)
        axes.broken_barh(
            [(start, _seconds(interval.end_ns, origin) - start)],
            (rows.get(interval.node, 0) + 0.15, 0.7),
            facecolors=colours.get(interval.node, "#999999"),
        )
    axes.set_yticks([rows[node] + 0.5 for node in nodes], nodes)
    for label, node in zip(axes.get_yticklabels(), nodes, strict=True):
        label.set_color(colours[node])
        label.set_fontweight("bold")
    axes.set_ylim(0, max(1, len(nodes)))
    axes.set_ylabel("leader")
    if not leaders:
        axes.text(0.5, 0.5, "no leader recorded", transform=axes.transAxes, ha="center")


def _throughput(axes: Axes, throughput: pd.DataFrame) -> None:
    if throughput.empty:
        axes.text(0.5, 0.5, "no requests recorded", transform=axes.transAxes, ha="center")
    else:
        outcomes = [o for o in OUTCOME_COLOURS if o in throughput.columns]
        outcomes += [o for o in throughput.columns if o not in OUTCOME_COLOURS]
        bin_s = float(throughput.index[1] - throughput.index[0]) if len(throughput) > 1 else 0.1
        axes.stackplot(
            [*throughput.index, throughput.index[-1] + bin_s],
            *[[*throughput[o], throughput[o].iloc[-1]] for o in outcomes],
            labels=outcomes,
            colors=[OUTCOME_COLOURS.get(o, "#444444") for o in outcomes],
            step="post",
            alpha=0.85,
        )
        axes.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), title="outcome", frameon=False)
    axes.set_ylabel("requests/s")
    axes.grid(axis="y", alpha=0.3)


# More points than a 1,200-pixel-wide plot can tell apart cost memory and seconds to draw
# (six million requests: ~100 MB of offsets alone) and show nothing more.
MAX_POINTS_PER_OUTCOME = 150_000


def _latency(axes: Axes, requests: Requests | None, origin: int) -> None:
    totals = outcome_counts(requests)
    if not totals:
        axes.text(0.5, 0.5, "no requests recorded", transform=axes.transAxes, ha="center")
        axes.set_ylabel("latency (ms)")
        return
    samplers = {
        outcome: PointSampler(totals[outcome], MAX_POINTS_PER_OUTCOME)
        for outcome in OUTCOME_COLOURS
        if totals.get(outcome)
    }
    for piece in pieces_of(requests):
        seconds = ((piece["intended_ns"] - origin) / NS_PER_S).to_numpy()
        latency = latencies_ms(piece).clip(lower=0.01).to_numpy()  # log scale needs > 0
        outcomes = piece["outcome"]
        for outcome, sampler in samplers.items():
            chosen = (outcomes == outcome).to_numpy()
            sampler.add(seconds[chosen], latency[chosen])
    for outcome, sampler in samplers.items():
        drawn_seconds, drawn_latency = sampler.points()
        shown = "" if sampler.keep_all else f"; {len(drawn_seconds):,} drawn"
        axes.scatter(
            drawn_seconds,
            drawn_latency,
            s=5,
            color=OUTCOME_COLOURS[outcome],
            label=f"{outcome} ({totals[outcome]:,}{shown})",
            alpha=0.6,
            linewidths=0,
            rasterized=True,
        )
    _log_ms_axis(axes)
    axes.set_ylabel("latency (ms)\nfrom intended send")
    axes.grid(axis="y", which="major", alpha=0.3)
    axes.legend(
        loc="upper left", bbox_to_anchor=(1.005, 1.0), title="outcome", frameon=False, markerscale=3
    )


def _shade_faults(axes: Axes, windows: list[FaultWindow], origin: int, end_s: float) -> None:
    for window in windows:
        start = _seconds(window.applied_ns, origin)
        stop = _seconds(window.healed_ns, origin) if window.healed_ns is not None else end_s
        axes.axvspan(start, max(stop, start + 0.02), color=FAULT_COLOUR, alpha=0.12, lw=0)
        axes.axvline(start, color=FAULT_COLOUR, lw=1, alpha=0.7)


def _label_faults(axes: Axes, windows: list[FaultWindow], origin: int) -> None:
    """Label each fault once above the top panel (type, targets, applied → healed); repeats of
    the same fault get `xN` instead of a label each, which would overlap."""
    repeats = Counter(window.fault_index for window in windows)
    labelled: set[int] = set()
    for window in windows:
        if window.fault_index in labelled:
            continue
        labelled.add(window.fault_index)
        start = _seconds(window.applied_ns, origin)
        end = (
            "never healed"
            if window.healed_ns is None
            else f"{_seconds(window.healed_ns, origin):.1f} s"
        )
        count = repeats[window.fault_index]
        span = f"{start:.1f} → {end}" if count == 1 else f"x{count}, first {start:.1f} → {end}"
        axes.annotate(
            f"{window.label} ({span})",
            xy=(start, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, 4 + 12 * (len(labelled) - 1)),
            textcoords="offset points",
            color=FAULT_COLOUR,
            fontsize=FONT_SIZE,
            fontweight="bold",
        )


def percentile_figure(phases: list[PhasePercentiles]) -> Figure:
    """Grouped bars: one group per percentile, one bar per phase (log scale)."""
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots()
    labels = list(phases[0].values_ms) if phases else []
    width = 0.8 / max(1, len(phases))
    for offset, phase in enumerate(phases):
        positions = [i + (offset - (len(phases) - 1) / 2) * width for i in range(len(labels))]
        values = [phase.values_ms[label] or 0.0 for label in labels]
        bars = axes.bar(
            positions,
            values,
            width,
            label=f"{phase.phase} ({phase.count} acked)",
            color=PHASE_COLOURS.get(phase.phase, "#777777"),
        )
        axes.bar_label(
            bars, labels=[_short(phase.values_ms[label]) for label in labels], fontsize=8, padding=2
        )
    axes.set_xticks(range(len(labels)), labels)
    _log_ms_axis(axes)
    axes.set_ylabel("latency (ms) from intended send")
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), title="phase", frameon=False)
    axes.margins(y=0.15)
    return fig


def _log_ms_axis(axes: Axes) -> None:
    """Log scale labelled 1, 2, 5, 10, 20, 50 (ms) rather than 10^0 and 2x10^0."""
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axes.yaxis.set_minor_formatter(FuncFormatter(_minor_log_label))


def _minor_log_label(value: float, _position: object) -> str:
    if value <= 0:
        return ""
    leading_digit = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if leading_digit in (2, 5) else ""


def _short(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"
