"""Version 1 of summary.json, read into the current RunSummary.

Version 1 was the dictionary `runner._finish` and `_judgement` built by hand, without a
`schema_version`. It is described here once, leniently (every field may be missing, as in
the oldest runs and in aborted ones), and upgraded: what it did not record (the load's span,
each fault's leaders and recovery instant, the instants of each failover, the recovery span)
is left empty, and readers treat it as not recorded. Its SLO bounds were display text
("<= 800", ">= 0 and <= 5"); they are parsed back here, the only place that reads that text.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from harness.rig import RigLoad
from harness.store.summarise import rig_summary
from harness.store.summary import (
    Bound,
    CheckSummary,
    FailoverSummary,
    GitFacts,
    HostFacts,
    LatencyByPhase,
    LatencyFigures,
    MetricValues,
    RecordCounts,
    RigSummary,
    RunStatus,
    RunSummary,
    ScheduleStep,
    SloSummary,
    SteadyWindow,
    TargetFacts,
)
from harness.verdicts import Verdict

_T = TypeVar("_T")


class _Old(BaseModel):
    # Lenient where the current model is strict: old files hold what old harnesses wrote.
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Git(_Old):
    commit: str | None = None
    dirty: bool | None = None


class _Target(_Git):
    name: str | None = None
    version: str | None = None


class _Host(_Old):
    hostname: str | None = None
    platform: str | None = None
    python: str | None = None
    cpus: int | None = None


class _Step(_Old):
    offset_s: float
    action: Literal["apply", "heal"]
    fault: int
    repeat: int = 0


class _Failover(_Old):
    fault: int = 0
    repeat: int = 0
    old_leader: str = ""
    new_leader: str | None = None
    failover_ms: float | None = None
    first_commit_ms: float | None = None
    estimator: Literal["role_age", "mid_request"] | None = None


class _Latency(_Old):
    count: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    max_ms: float | None = None


class _Slo(_Old):
    metric: str
    value: float | None = None
    limit: str = ""
    verdict: Verdict = Verdict.UNKNOWN
    explanation: str = ""


class _Check(_Old):
    name: str
    verdict: Verdict = Verdict.UNKNOWN
    counts: dict[str, int] = Field(default_factory=dict)
    violations: list[str] = Field(default_factory=list)
    explanation: str = ""


class _Rig(_Old):
    samples: int = 0
    host_busy_pct_mean: float | None = None
    host_busy_pct_max: float | None = None
    host_steal_pct_mean: float | None = None
    host_steal_pct_max: float | None = None
    services_cpu_pct_mean: dict[str, float] = Field(default_factory=dict)


class _Window(_Old):
    window: str = ""
    verdict: Verdict = Verdict.UNKNOWN
    requests: int = 0
    success_rate: float | None = None
    latency_p99_ms: float | None = None
    problems: list[str] = Field(default_factory=list)
    rig: _Rig | None = None


class SummaryV1(_Old):
    scenario: str | None = None
    status: RunStatus = RunStatus.FINISHED
    verdict: Verdict = Verdict.UNKNOWN
    release: str | None = None
    started_at: str | None = None
    duration_s: float | None = None
    seed: int | None = None
    harness: _Git = _Git()
    target: _Target = _Target()
    host: _Host = _Host()
    records: dict[str, int] = Field(default_factory=dict)
    errors: list[str] = Field(default_factory=list)
    schedule: list[_Step] = Field(default_factory=list)
    metrics: dict[str, float | None] | None = None
    errors_by_kind: dict[str, int] = Field(default_factory=dict)
    failovers: list[_Failover] = Field(default_factory=list)
    latency_by_phase: dict[str, _Latency] = Field(default_factory=dict)
    slos: list[_Slo] = Field(default_factory=list)
    checks: list[_Check] = Field(default_factory=list)
    steady_state: list[_Window] = Field(default_factory=list)
    rig: _Rig | None = None


def upgrade(text: str, run_dir: Path) -> RunSummary:
    """A version-1 summary.json of `run_dir` as a current RunSummary (ValidationError if it
    is not one). The run directory fills what the oldest summaries left out."""
    old = SummaryV1.model_validate_json(text)
    return RunSummary(
        scenario=old.scenario or run_dir.parent.name,
        status=old.status,
        verdict=old.verdict,
        release=old.release,
        started_at=old.started_at or started_from_stamp(run_dir.name),
        duration_s=old.duration_s,
        seed=old.seed,
        harness=GitFacts(commit=old.harness.commit, dirty=old.harness.dirty),
        target=TargetFacts(**old.target.model_dump()),
        host=HostFacts(**old.host.model_dump()),
        records=RecordCounts(**_known(old.records, RecordCounts.model_fields)),
        errors=list(old.errors),
        schedule=[ScheduleStep(**step.model_dump()) for step in old.schedule],
        metrics=None
        if old.metrics is None
        else MetricValues(**_known(old.metrics, MetricValues.model_fields)),
        errors_by_kind=dict(old.errors_by_kind),
        failovers=[_failover(failover) for failover in old.failovers],
        latency_by_phase=_latency(old.latency_by_phase),
        slos=[_slo(slo) for slo in old.slos],
        checks=[CheckSummary(**check.model_dump()) for check in old.checks],
        steady_state=[_window(window) for window in old.steady_state],
        rig=_rig(old.rig),
    )


def _known(values: Mapping[str, _T], fields: Mapping[str, object]) -> dict[str, _T]:
    """Only the names the current model has: a figure version 1 had and 2 dropped is lost."""
    return {name: value for name, value in values.items() if name in fields}


def _failover(old: _Failover) -> FailoverSummary:
    return FailoverSummary(
        **old.model_dump(), injected_ns=None, elected_ns=None, first_commit_ns=None
    )


def _latency(old: dict[str, _Latency]) -> LatencyByPhase | None:
    if not old:
        return None
    empty = _Latency()
    phases = {
        phase: LatencyFigures(**old.get(phase, empty).model_dump())
        for phase in ("before", "during", "after")
    }
    return LatencyByPhase(**phases)


def _slo(old: _Slo) -> SloSummary:
    return SloSummary(
        metric=old.metric,
        value=old.value,
        bound=bound_of(old.limit),
        bound_text=old.limit,
        verdict=old.verdict,
        explanation=old.explanation,
    )


def bound_of(text: str) -> Bound:
    """An SLO bound from the display text version 1 stored (SloResult.bound_text)."""
    low = high = None
    for part in text.split(" and "):
        operator, _, number = part.strip().partition(" ")
        try:
            value = float(number)
        except ValueError:
            continue
        if operator == ">=":
            low = value
        elif operator == "<=":
            high = value
    return Bound(min=low, max=high)


def _window(old: _Window) -> SteadyWindow:
    return SteadyWindow(**old.model_dump(exclude={"rig"}), rig=_rig(old.rig))


def _rig(old: _Rig | None) -> RigSummary | None:
    """None without the host figure, as version 1's readers treated it."""
    if old is None or old.host_busy_pct_mean is None:
        return None
    fields = old.model_dump()
    return rig_summary(RigLoad(**fields))


def started_from_stamp(stamp: str) -> str:
    """A run directory is named by its UTC start, 20261124T185624.336660Z."""
    date, _, time = stamp.partition("T")
    if len(date) != 8 or len(time) < 6:
        return stamp
    return f"{date[:4]}-{date[4:6]}-{date[6:]}T{time[:2]}:{time[2:4]}:{time[4:6]}Z"
