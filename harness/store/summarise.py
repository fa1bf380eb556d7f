"""From a run's results to its RunSummary: the one place that turns the harness's own types
(metrics, SLO results, checks, steady-state windows, the recorded history) into the stored
document, so the document's shape does not follow every change of the judging code."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from harness.analysis import SteadyStateResult, leader_at
from harness.checks import CheckResult
from harness.clock_anchor import ClockAnchor, iso_utc
from harness.faults.effects import EFFECT_KEY, Effect
from harness.history import History
from harness.leadership import LeadershipLoss
from harness.metrics import NS_PER_MS, Failover, LatencySummary, Recovery, RunMetrics
from harness.records import FaultEvent, ProbeSample
from harness.rig import RigLoad
from harness.send_lateness import lateness_warnings
from harness.status_timing import ClusterTiming, precision_warnings, status_timing
from harness.store.summary import (
    BackendFacts,
    Bound,
    CheckSummary,
    ClockAnchorSummary,
    FailoverSummary,
    FaultEffectSummary,
    FaultSummary,
    GitFacts,
    HealingSummary,
    HostFacts,
    LatencyByPhase,
    LatencyFigures,
    LeadershipLossSummary,
    LoadSpan,
    MetricValues,
    RecordCounts,
    RecoverySpan,
    RigSummary,
    RunStatus,
    RunSummary,
    ScheduleStep,
    SloSummary,
    StatusTiming,
    SteadyWindow,
    TargetFacts,
)
from harness.verdicts import SloResult, Verdict

# "Healed never": the leader after such a fault is the one at the end of the history.
_END_OF_HISTORY_NS = sys.maxsize


@dataclass(frozen=True)
class RunFacts:
    """What the runner knows of a run whether or not it was judged."""

    scenario: str
    status: RunStatus
    release: str | None
    started_at: str
    duration_s: float
    seed: int
    harness: GitFacts
    target: TargetFacts
    host: HostFacts
    records: RecordCounts
    errors: list[str]
    schedule: list[ScheduleStep]
    backend: BackendFacts | None = None
    healing: HealingSummary | None = None
    stopped_by: str | None = None
    failover_precision_ms: float | None = None  # the scenario's; None: do not warn
    clock_anchors: tuple[ClockAnchor, ...] = ()  # the run's start and end (clock_anchor.py)
    warnings: list[str] = field(default_factory=list)
    measurement_warnings: list[str] = field(default_factory=list)  # the run's own (after_load)


class JudgedRun(Protocol):
    """What a summary is built from (runner.RunResult): metrics is None when not judged."""

    @property
    def verdict(self) -> Verdict: ...
    @property
    def metrics(self) -> RunMetrics | None: ...
    @property
    def slos(self) -> list[SloResult]: ...
    @property
    def steady(self) -> list[SteadyStateResult]: ...
    @property
    def checks(self) -> list[CheckResult]: ...
    @property
    def history(self) -> History | None: ...
    @property
    def rig(self) -> RigLoad | None: ...


def summarise(facts: RunFacts, run: JudgedRun) -> RunSummary:
    history = run.history or History()
    metrics = run.metrics
    timings = status_timing(history.probes)
    return RunSummary(
        scenario=facts.scenario,
        status=facts.status,
        verdict=run.verdict,
        release=facts.release,
        started_at=facts.started_at,
        duration_s=facts.duration_s,
        seed=facts.seed,
        harness=facts.harness,
        target=facts.target,
        host=facts.host,
        backend=facts.backend,
        records=facts.records,
        errors=list(facts.errors),
        schedule=list(facts.schedule),
        healing=facts.healing,
        stopped_by=facts.stopped_by,
        warnings=list(facts.warnings),
        load=_load_span(history),
        faults=_with_utc(
            fault_summaries(history, metrics.recoveries if metrics else []), facts.clock_anchors
        ),
        metrics=MetricValues(**metrics.values()) if metrics else None,
        errors_by_kind=dict(metrics.errors) if metrics else {},
        failovers=[_failover(failover) for failover in metrics.failovers] if metrics else [],
        recovery=_recovery_span(metrics) if metrics else None,
        latency_by_phase=_latency_by_phase(metrics),
        slos=[_slo(slo) for slo in run.slos],
        checks=[_check(check) for check in run.checks],
        steady_state=[_window(window) for window in run.steady],
        rig=rig_summary(run.rig) if run.rig else None,
        leadership_losses=[_loss(loss) for loss in metrics.leadership_losses] if metrics else [],
        status_timing=[_timing(timing) for timing in timings],
        clock_anchors=[_anchor(anchor) for anchor in facts.clock_anchors],
        measurement_warnings=[
            *(
                precision_warnings(timings, facts.failover_precision_ms)
                if facts.failover_precision_ms is not None
                else []
            ),
            *lateness_warnings(history.requests),
            *facts.measurement_warnings,
        ],
    )


def _anchor(anchor: ClockAnchor) -> ClockAnchorSummary:
    return ClockAnchorSummary(
        monotonic_ns=anchor.monotonic_ns,
        utc_ns=anchor.utc_ns,
        utc=iso_utc(anchor.utc_ns),
        uncertainty_ns=anchor.uncertainty_ns,
    )


def _with_utc(faults: list[FaultSummary], anchors: Sequence[ClockAnchor]) -> list[FaultSummary]:
    """Each fault's instants in UTC too, so it lines up with the system's own logs."""
    if not anchors:
        return faults
    anchor = anchors[0]
    return [
        fault.model_copy(
            update={
                "applied_utc": anchor.iso_of(fault.applied_ns),
                "healed_utc": anchor.iso_of(fault.healed_ns) if fault.healed_ns else None,
            }
        )
        for fault in faults
    ]


def _loss(loss: LeadershipLoss) -> LeadershipLossSummary:
    return LeadershipLossSummary(
        cluster=loss.cluster,
        old_leader=loss.old_leader,
        old_term=loss.old_term,
        lost_ns=loss.lost_ns,
        sign=loss.sign,
        new_leader=loss.new_leader,
        new_term=loss.new_term,
        elected_ns=loss.elected_ns,
        leaderless_ms=_round(loss.leaderless_ms),
        same_node=loss.same_node,
        fault=loss.fault_index,
        error_bound_ms=(
            None if (bound := loss.error_bound_ns) is None else _round(bound / NS_PER_MS)
        ),
    )


def _timing(timing: ClusterTiming) -> StatusTiming:
    return StatusTiming(
        cluster=timing.cluster,
        samples=timing.samples,
        round_trip_p50_ms=timing.round_trip_p50_ms,
        round_trip_p99_ms=timing.round_trip_p99_ms,
        round_trip_max_ms=timing.round_trip_max_ms,
        implied_error_ms=timing.implied_error_ms,
    )


def _load_span(history: History) -> LoadSpan | None:
    started = history.phase_ns("load")
    if started is None:
        return None
    return LoadSpan(started_ns=started, ended_ns=history.phase_ns("load-done"))


def fault_summaries(history: History, recoveries: Sequence[Recovery]) -> list[FaultSummary]:
    """Every applied fault, in order: from its events, the probe's view of who led, and (when
    the run was judged) when the system recovered from it."""
    probes = sorted(history.probes, key=lambda sample: sample.arrival_ns)
    healed = {(f.fault_index, f.repeat): f for f in history.faults if f.phase == "healed"}
    by_fault = {(r.fault_index, r.repeat): r for r in recoveries}
    applied = sorted((f for f in history.faults if f.phase == "applied"), key=lambda f: f.at_ns)
    return [
        _fault(
            event,
            healed.get((event.fault_index, event.repeat)),
            probes,
            by_fault.get((event.fault_index, event.repeat)),
        )
        for event in applied
    ]


def _fault(
    event: FaultEvent,
    heal: FaultEvent | None,
    probes: Sequence[ProbeSample],
    recovery: Recovery | None,
) -> FaultSummary:
    # The timeline writes these into the event's detail (timeline.Timeline._apply).
    detail = event.detail
    cluster = detail.get("cluster")
    # The leader after, in the cluster the fault was about (older runs: every sample).
    mine = [p for p in probes if p.cluster == cluster] if isinstance(cluster, str) else probes
    healed_ns = heal.at_ns if heal is not None else None
    leader_after, term_after = leader_at(
        mine, healed_ns if healed_ns is not None else _END_OF_HISTORY_NS
    )
    leader_before = detail.get("leader_before")
    term_before = detail.get("term_before")
    return FaultSummary(
        fault=event.fault_index,
        repeat=event.repeat,
        type=event.fault_type,
        targets=list(event.targets),
        applied_ns=event.at_ns,
        healed_ns=healed_ns,
        late_ms=_number(detail.get("late_ms")),
        leader_before=leader_before if isinstance(leader_before, str) else None,
        term_before=term_before if isinstance(term_before, int) else None,
        leader_after=leader_after,
        term_after=term_after,
        removes_leader=detail.get("removes_leader") is True,
        recovered_ns=recovery.recovered_ns if recovery else None,
        recovery_ms=recovery.recovery_ms if recovery else None,
        recovery_from_heal_ms=recovery.recovery_from_heal_ms if recovery else None,
        effect=_effect(heal),
    )


def _effect(heal: FaultEvent | None) -> FaultEffectSummary | None:
    effect = Effect.from_json(heal.detail.get(EFFECT_KEY)) if heal is not None else None
    if effect is None:
        return None
    # Through JSON once: evidence read back from Parquet may hold numpy or tuple values.
    evidence = json.loads(json.dumps(effect.evidence, default=str))
    return FaultEffectSummary(status=effect.status.value, reason=effect.reason, evidence=evidence)


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _failover(failover: Failover) -> FailoverSummary:
    return FailoverSummary(
        fault=failover.fault_index,
        repeat=failover.repeat,
        old_leader=failover.old_leader,
        new_leader=failover.new_leader,
        injected_ns=failover.injected_ns,
        elected_ns=failover.elected_ns,
        first_commit_ns=failover.first_commit_ns,
        failover_ms=failover.failover_ms,
        first_commit_ms=failover.first_commit_ms,
        estimator=failover.election.estimator if failover.election else None,
        cluster=failover.cluster,
        error_bound_ms=_round(failover.error_bound_ms),
    )


def _recovery_span(metrics: RunMetrics) -> RecoverySpan | None:
    first, recovered = metrics.first_fault_ns, metrics.recovered_ns
    if first is None:
        return None  # no fault was applied
    span_ms = (recovered - first) / NS_PER_MS if recovered is not None else None
    return RecoverySpan(first_fault_ns=first, recovered_ns=recovered, span_ms=span_ms)


def _latency_by_phase(metrics: RunMetrics | None) -> LatencyByPhase | None:
    if metrics is None or metrics.latency is None:
        return None
    latency = metrics.latency
    return LatencyByPhase(
        before=_figures(latency.before),
        during=_figures(latency.during),
        after=_figures(latency.after),
    )


def _figures(latency: LatencySummary) -> LatencyFigures:
    return LatencyFigures(
        count=latency.count,
        p50_ms=latency.p50_ms,
        p90_ms=latency.p90_ms,
        p99_ms=latency.p99_ms,
        p999_ms=latency.p999_ms,
        max_ms=latency.max_ms,
    )


def _slo(slo: SloResult) -> SloSummary:
    return SloSummary(
        metric=slo.metric,
        value=slo.value,
        bound=Bound(min=slo.limit.min, max=slo.limit.max),
        bound_text=slo.bound_text,
        verdict=slo.verdict,
        explanation=slo.explanation,
    )


def _check(check: CheckResult) -> CheckSummary:
    return CheckSummary(
        name=check.name,
        verdict=check.verdict,
        counts=dict(check.counts),
        violations=list(check.violations),
        explanation=check.explanation,
    )


def _window(window: SteadyStateResult) -> SteadyWindow:
    return SteadyWindow(
        window=window.name,
        verdict=window.verdict,
        requests=window.requests,
        success_rate=window.success_rate,
        latency_p99_ms=window.latency_p99_ms,
        problems=list(window.problems),
        rig=rig_summary(window.rig) if window.rig else None,
    )


def rig_summary(load: RigLoad) -> RigSummary:
    """Rounded to a tenth: more digits of a CPU share sampled every half second are noise."""
    return RigSummary(
        samples=load.samples,
        host_busy_pct_mean=round(load.host_busy_pct_mean, 1),
        host_busy_pct_max=_round(load.host_busy_pct_max),
        host_steal_pct_mean=_round(load.host_steal_pct_mean),
        host_steal_pct_max=_round(load.host_steal_pct_max),
        services_cpu_pct_mean={
            name: round(pct, 1) for name, pct in load.services_cpu_pct_mean.items()
        },
        saturated=load.saturated,
    )


def rig_load(summary: RigSummary) -> RigLoad:
    """Back from the summary, for the run report's wording of it (rig.describe)."""
    return RigLoad(**summary.model_dump(exclude={"saturated"}))


def _round(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None
