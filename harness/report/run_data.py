"""A stored run read back for reporting, and the pure derivations the report draws from it:
leader intervals from probe samples, fault windows from fault events, per-phase latency
percentiles (corrected for coordinated omission) and throughput by outcome.

Everything works on pandas frames read from the run's Parquet files, the requests a row
group at a time (`request_pieces`); a missing file gives None, and every function accepts
None or an empty frame, so aborted runs still report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from harness.errors import InputError, SummaryError
from harness.metrics import NS_PER_MS, LatencySummary
from harness.report.request_pieces import (
    RequestFile,
    Requests,
    first_intended_ns,
    pieces_of,
)
from harness.store.summary import LatencyFigures, RecoverySpan, RunSummary, load_summary

NS_PER_S = 1_000_000_000
# The history files the report draws and the columns it reads of each (None: all); requests
# are RunData.requests. A long run's probe samples are ~170,000 rows of eleven columns: read
# whole, they cost the report ~80 MB while it drew three.
HISTORY_FILES: dict[str, list[str] | None] = {
    "probes": ["node", "arrival_ns", "role"],
    "faults": None,
    "phases": None,
}
# The latency percentiles the report shows (LatencySummary's); max is added to these.
PERCENTILE_LABELS = ("p50", "p90", "p99", "p99.9")
PHASES = ("before", "during", "after")
# Where a LatencySummary and the summary's LatencyFigures keep each of them.
_SUMMARY_FIELD = {"p50": "p50_ms", "p90": "p90_ms", "p99": "p99_ms", "p99.9": "p999_ms"}


class NotARunError(InputError):
    """The directory is not a run directory with a readable summary.json."""


@dataclass(frozen=True)
class RunData:
    run_dir: Path
    summary: RunSummary
    scenario_text: str | None
    frames: dict[str, pd.DataFrame | None]
    requests: RequestFile | None = None  # read in pieces: a long run's would not fit

    def frame(self, name: str) -> pd.DataFrame | None:
        """The Parquet history `name` (not requests), or None when not recorded (or empty)."""
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
    frames = {
        name: read_history_file(run_dir, name, columns) for name, columns in HISTORY_FILES.items()
    }
    return RunData(
        run_dir, summary, scenario_text, frames, RequestFile.open(run_dir / "requests.parquet")
    )


def read_history_file(
    run_dir: Path, name: str, columns: list[str] | None = None
) -> pd.DataFrame | None:
    path = run_dir / f"{name}.parquet"
    try:
        return pd.read_parquet(path, columns=columns) if path.is_file() else None
    except (OSError, ValueError):  # a truncated file of an aborted run is "not recorded"
        return None


def load_start_ns(phases: pd.DataFrame | None, requests: Requests | None) -> int | None:
    """Time zero of every chart: the `load` phase, else the first intended send."""
    if phases is not None and not phases.empty:
        load = phases[phases["name"] == "load"]
        if not load.empty:
            return int(load["at_ns"].min())
    return first_intended_ns(requests)


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
    values_ms: dict[str, float | None]  # PERCENTILE_LABELS and "max"


def phase_percentiles(
    requests: Requests | None, first_fault_ns: int | None, recovered_ns: int | None
) -> list[PhasePercentiles]:
    """Latency of acknowledged requests before the first fault, from it until recovery, and
    after recovery, split by intended send time and ranked as the summary's latency_by_phase
    (`LatencySummary`), for runs whose summary lacks them (`summary_percentiles`)."""
    latencies: list[list[npt.NDArray[np.int64]]] = [[] for _ in PHASES]
    for piece in pieces_of(requests):
        acked = (piece["outcome"] == "acked").to_numpy()
        intended = piece["intended_ns"].to_numpy(dtype=np.int64)[acked]
        latency = piece["end_ns"].to_numpy(dtype=np.int64)[acked] - intended
        phase = np.zeros(len(intended), dtype=np.int8)
        if first_fault_ns is not None:
            phase[intended >= first_fault_ns] = 1
            if recovered_ns is not None:
                phase[intended >= recovered_ns] = 2
        for number, parts in enumerate(latencies):
            parts.append(latency[phase == number])
    return [
        _percentiles(
            phase,
            LatencySummary.of_latencies_ns(
                np.concatenate(parts) if parts else np.empty(0, np.int64)
            ),
        )
        for phase, parts in zip(PHASES, latencies, strict=True)
    ]


def summary_percentiles(summary: RunSummary) -> list[PhasePercentiles] | None:
    """The phases' percentiles as the run's judging computed them (exact, over the same
    requests and split at the same instants as `phase_percentiles`), so the report need not
    rank a long run's latencies again (8 bytes a request); None when the summary lacks them:
    an aborted run's, or one written before its figures had p90."""
    latency = summary.latency_by_phase
    if latency is None:
        return None
    figures = {"before": latency.before, "during": latency.during, "after": latency.after}
    if any(f.count and f.p90_ms is None for f in figures.values()):
        return None
    return [_percentiles(phase, f) for phase, f in figures.items()]


def _percentiles(phase: str, figures: LatencySummary | LatencyFigures) -> PhasePercentiles:
    values = {label: getattr(figures, _SUMMARY_FIELD[label]) for label in PERCENTILE_LABELS}
    return PhasePercentiles(phase, figures.count, values | {"max": figures.max_ms})


def throughput_per_s(requests: Requests | None, origin_ns: int, bin_s: float = 0.1) -> pd.DataFrame:
    """Completed requests per second by outcome, in bins of `bin_s` by completion time.
    Index: bin start in seconds from `origin_ns`; one column per outcome."""
    bin_ns = int(bin_s * NS_PER_S)
    counts: dict[str, pd.Series] = {}
    for piece in pieces_of(requests):
        # Integer bin numbers: float division would drop or merge bins at their edges.
        bins = ((piece["end_ns"] - origin_ns) // bin_ns).to_numpy(dtype=np.int64)
        outcome = piece["outcome"].astype("category")  # a code a request, not a string
        codes = outcome.cat.codes.to_numpy()
        for code, name in enumerate(outcome.cat.categories):
            chosen = bins[codes == code]
            if len(chosen):
                first = int(chosen.min())
                tally = np.bincount(chosen - first)
                part = pd.Series(tally, index=range(first, first + len(tally)))
                counts[str(name)] = (
                    counts[str(name)].add(part, fill_value=0) if str(name) in counts else part
                )
    if not counts:
        return pd.DataFrame()
    table = pd.DataFrame({name: counts[name] for name in sorted(counts)})
    every_bin = range(int(table.index.min()), int(table.index.max()) + 1)
    table = table.reindex(every_bin).fillna(0).astype(np.int64) / bin_s
    table.index = [round(number * bin_s, 6) for number in every_bin]
    table.columns.name = "outcome"
    return table
