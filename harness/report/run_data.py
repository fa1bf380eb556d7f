"""A stored run read back for reporting, and the pure derivations the report draws from it:
leader intervals from probe samples, fault windows from fault events, per-phase latency
percentiles (corrected for coordinated omission) and throughput by outcome.

Everything works on pandas frames read from the run's Parquet files; a missing file gives
None, and every function accepts None or an empty frame, so aborted runs still report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness.errors import InputError, SummaryError
from harness.metrics import NS_PER_MS, percentile
from harness.store.summary import RecoverySpan, RunSummary, load_summary

NS_PER_S = 1_000_000_000
HISTORY_FILES = ("requests", "probes", "faults", "phases", "metrics")
# What the report uses of each request: its ids and reasons would be most of a long run's
# frame in memory (a Python string per request) and are not drawn; the outcome is read as
# a category (a byte a request, not a pointer).
COLUMNS_READ = {"requests": ["intended_ns", "end_ns", "outcome"]}
CATEGORIES_READ = {"requests": ["outcome"]}
# (label, fraction) of the latency percentiles the report shows; max is added to these.
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999))
PHASES = ("before", "during", "after")


class NotARunError(InputError):
    """The directory is not a run directory with a readable summary.json."""


@dataclass(frozen=True)
class RunData:
    run_dir: Path
    summary: RunSummary
    scenario_text: str | None
    frames: dict[str, pd.DataFrame | None]

    def frame(self, name: str) -> pd.DataFrame | None:
        """The Parquet history `name`, or None when it was not recorded (or is empty)."""
        frame = self.frames.get(name)
        return frame if frame is not None and not frame.empty else None


def load_run(run_dir: Path) -> RunData:
    run_dir = run_dir.resolve()  # results/latest is a symlink; report on its target
    if not run_dir.is_dir():
        raise NotARunError(f"{run_dir}: no such run directory")
    try:
        summary = load_summary(run_dir)
    except SummaryError as error:
        raise NotARunError(str(error)) from error
    scenario_path = run_dir / "scenario.yaml"
    scenario_text = scenario_path.read_text() if scenario_path.is_file() else None
    return RunData(
        run_dir, summary, scenario_text, {n: read_history_file(run_dir, n) for n in HISTORY_FILES}
    )


def read_history_file(run_dir: Path, name: str) -> pd.DataFrame | None:
    """The columns of `<name>.parquet` the report uses; None when not recorded."""
    path = run_dir / f"{name}.parquet"
    if not path.is_file():
        return None
    try:
        return pd.read_parquet(
            path, columns=COLUMNS_READ.get(name), read_dictionary=CATEGORIES_READ.get(name)
        )
    except (OSError, ValueError):  # a truncated file of an aborted run is "not recorded"
        return None


def load_start_ns(phases: pd.DataFrame | None, requests: pd.DataFrame | None) -> int | None:
    """Time zero of every chart: the `load` phase, else the first intended send."""
    if phases is not None and not phases.empty:
        load = phases[phases["name"] == "load"]
        if not load.empty:
            return int(load["at_ns"].min())
    if requests is not None and not requests.empty:
        return int(requests["intended_ns"].min())
    return None


@dataclass(frozen=True)
class LeaderInterval:
    node: str
    start_ns: int
    end_ns: int


def leader_intervals(probes: pd.DataFrame | None) -> list[LeaderInterval]:
    """Per node, each run of consecutive samples in which it reported itself leader. An
    interval ends at that node's first sample that is not "leader" (or its last sample)."""
    if probes is None or probes.empty:
        return []
    intervals: list[LeaderInterval] = []
    for node, samples in probes.sort_values("arrival_ns").groupby("node", sort=True):
        start: int | None = None
        last_leader = 0
        for arrival, role in zip(samples["arrival_ns"], samples["role"], strict=True):
            if role == "leader":
                start = int(arrival) if start is None else start
                last_leader = int(arrival)
            elif start is not None:
                intervals.append(LeaderInterval(str(node), start, int(arrival)))
                start = None
        if start is not None:
            intervals.append(LeaderInterval(str(node), start, last_leader))
    return sorted(intervals, key=lambda interval: interval.start_ns)


@dataclass(frozen=True)
class FaultWindow:
    fault_index: int
    repeat: int
    fault_type: str
    applied_ns: int
    healed_ns: int | None  # None: never healed within the recorded history
    targets: tuple[str, ...]
    detail: dict[str, Any] = field(default_factory=dict)
    heal_detail: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.fault_type} {', '.join(self.targets)}".strip()


def fault_windows(faults: pd.DataFrame | None) -> list[FaultWindow]:
    """One window per applied fault (fault_index, repeat), closed by its heal if recorded."""
    if faults is None or faults.empty:
        return []
    healed = {
        (int(row.fault_index), int(row.repeat)): row
        for row in faults[faults["phase"] == "healed"].itertuples()
    }
    windows = []
    for row in faults[faults["phase"] == "applied"].sort_values("at_ns").itertuples():
        heal = healed.get((int(row.fault_index), int(row.repeat)))
        windows.append(
            FaultWindow(
                fault_index=int(row.fault_index),
                repeat=int(row.repeat),
                fault_type=str(row.fault_type),
                applied_ns=int(row.at_ns),
                healed_ns=int(heal.at_ns) if heal is not None else None,
                targets=tuple(str(t) for t in _json(row.targets, [])),
                detail=_json(row.detail, {}),
                heal_detail=_json(heal.detail, {}) if heal is not None else {},
            )
        )
    return windows


def _json(text: object, default: Any) -> Any:
    if not isinstance(text, str) or not text:
        return default
    try:
        value = json.loads(text)
    except ValueError:
        return default
    return value if isinstance(value, type(default)) else default


def latencies_ms(requests: pd.DataFrame) -> pd.Series:
    """Latency from the intended send time, so a stalled sender cannot hide a slow system
    (coordinated omission)."""
    return (requests["end_ns"] - requests["intended_ns"]) / NS_PER_MS


def trouble_span(
    windows: list[FaultWindow], recovery: RecoverySpan | None, recovery_ms: float | None
) -> tuple[int, int | None]:
    """From the first fault to recovery (None: never recovered), as the summary's
    latency_by_phase split them: its recovery span. A version-1 summary did not record the
    span; then, given at least one fault window, the last fault plus recovery_ms is the
    estimate."""
    if recovery is not None:
        return recovery.first_fault_ns, recovery.recovered_ns
    first = min(window.applied_ns for window in windows)
    if recovery_ms is None:
        return first, None
    last = max(window.applied_ns for window in windows)
    return first, last + int(recovery_ms * NS_PER_MS)


@dataclass(frozen=True)
class PhasePercentiles:
    phase: str  # before | during | after
    count: int
    values_ms: dict[str, float | None]  # PERCENTILES labels and "max"


def phase_percentiles(
    requests: pd.DataFrame | None, first_fault_ns: int | None, recovered_ns: int | None
) -> list[PhasePercentiles]:
    """Latency of acknowledged requests before the first fault, from it until recovery, and
    after recovery, split by intended send time (as the summary's latency_by_phase)."""
    empty = pd.Series([], dtype="float64")
    if requests is None or requests.empty:
        return [_summarise(phase, empty) for phase in PHASES]
    acked = requests[requests["outcome"] == "acked"]
    latency = latencies_ms(acked)
    intended = acked["intended_ns"]
    if first_fault_ns is None:
        return [_summarise("before", latency), *(_summarise(p, empty) for p in PHASES[1:])]
    end = recovered_ns if recovered_ns is not None else math.inf
    return [
        _summarise("before", latency[intended < first_fault_ns]),
        _summarise("during", latency[(intended >= first_fault_ns) & (intended < end)]),
        _summarise("after", latency[intended >= end]),
    ]


def _summarise(phase: str, latency: pd.Series) -> PhasePercentiles:
    values = [float(v) for v in latency]
    summary: dict[str, float | None] = {
        label: percentile(values, fraction) for label, fraction in PERCENTILES
    }
    summary["max"] = max(values) if values else None
    return PhasePercentiles(phase, len(values), summary)


def throughput_per_s(
    requests: pd.DataFrame | None, origin_ns: int, bin_s: float = 0.1
) -> pd.DataFrame:
    """Completed requests per second by outcome, in bins of `bin_s` by completion time.
    Index: bin start in seconds from `origin_ns`; one column per outcome."""
    if requests is None or requests.empty:
        return pd.DataFrame()
    bin_ns = int(bin_s * NS_PER_S)
    # Integer bin numbers: float division would drop or merge bins at their edges.
    bins = (requests["end_ns"] - origin_ns) // bin_ns
    counts = pd.crosstab(bins, requests["outcome"])
    every_bin = range(int(counts.index.min()), int(counts.index.max()) + 1)
    counts = counts.reindex(every_bin, fill_value=0) / bin_s
    counts.index = [round(number * bin_s, 6) for number in every_bin]
    return counts
