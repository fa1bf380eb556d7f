"""From a recorded History to the run's figures: pure, so it can be re-run on stored runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.history import History
from harness.leadership import all_losses
from harness.metrics import (
    Failover,
    LatencySummary,
    Recovery,
    RunMetrics,
    Tolerance,
    downtime_ms,
    error_counts,
    find_failover,
    latency_by_phase,
    outages,
    recovered_at,
)
from harness.records import DEFAULT_CLUSTER, FaultEvent, Outcome, ProbeSample, RequestRecord
from harness.request_log import as_log
from harness.rig import INTERVAL_NS as RIG_INTERVAL_NS
from harness.rig import RigLoad, rig_load
from harness.scenario.model import Scenario, SteadyState
from harness.verdicts import Verdict

# A leader change this soon after a heal is still attributed to the fault.
LEADER_CHANGE_AFTER_HEAL_NS = 5_000_000_000


def tolerance_of(steady: SteadyState, rate_per_s: float) -> Tolerance:
    return Tolerance(
        window_ns=int(steady.window_s * 1e9),
        success_rate_min=steady.success_rate_min,
        latency_p99_ms_max=steady.latency_p99_ms_max,
        # An almost empty window proves nothing: ask for half the scheduled requests.
        min_requests=max(1, int(rate_per_s * steady.window_s / 2)),
    )


def _heal_of(event: FaultEvent, faults: Sequence[FaultEvent]) -> FaultEvent | None:
    return next(
        (
            f
            for f in faults
            if f.phase == "healed"
            and f.fault_index == event.fault_index
            and f.repeat == event.repeat
        ),
        None,
    )


def _failovers(history: History) -> list[Failover]:
    probes = sorted(history.probes, key=lambda s: s.arrival_ns)
    result = []
    applied = [f for f in history.faults if f.phase == "applied"]
    leader_removals = [f.at_ns for f in applied if f.detail.get("removes_leader")]
    for event in applied:
        old_leader = event.detail.get("leader_before")
        if not isinstance(old_leader, str):
            continue
        old_term = event.detail.get("term_before")
        cluster = event.detail.get("cluster")
        failover = find_failover(
            event,
            old_leader,
            old_term if isinstance(old_term, int) else None,
            probes,
            history.requests,
            cluster if isinstance(cluster, str) else DEFAULT_CLUSTER,
        )
        heal = _heal_of(event, history.faults)
        observed_while_active = failover.elected_ns is not None and (
            heal is None or failover.elected_ns <= heal.at_ns + LEADER_CHANGE_AFTER_HEAL_NS
        )
        # An election after a later fault removed the leader is that fault's failover.
        claimed_by_later = failover.elected_ns is not None and any(
            event.at_ns < at_ns <= failover.elected_ns for at_ns in leader_removals
        )
        if claimed_by_later:
            continue
        if event.detail.get("removes_leader") or observed_while_active:
            result.append(failover)
    return result


def _recovery(
    requests: Sequence[RequestRecord], since_ns: int, until_ns: int | None, tolerance: Tolerance
) -> int | None:
    """Recovered at the first healthy window after the last outage that began while the
    fault could still be acting (from `since_ns` to `until_ns`)."""
    last_end = until_ns if until_ns is not None else as_log(requests).numbers().max_end_ns()
    horizon = last_end or 0
    related = [end for start, end in outages(requests) if since_ns <= start <= horizon]
    not_before = max([since_ns, *related])
    return recovered_at(requests, not_before, tolerance)


def _recoveries(
    requests: Sequence[RequestRecord], faults: Sequence[FaultEvent], tolerance: Tolerance
) -> list[Recovery]:
    applied = sorted((f for f in faults if f.phase == "applied"), key=lambda f: f.at_ns)
    result = []
    for position, event in enumerate(applied):
        heal = _heal_of(event, faults)
        healed_ns = heal.at_ns if heal is not None else None
        recovered = _recovery(requests, event.at_ns, healed_ns, tolerance)
        # A fault applied again before the system recovered from this one (a flapping link)
        # makes one episode: its recovery counts from the episode's last heal, not this one.
        superseded = recovered is not None and any(
            later.at_ns < recovered for later in applied[position + 1 :]
        )
        result.append(
            Recovery(
                event.fault_index, event.repeat, event.at_ns, healed_ns, recovered, not superseded
            )
        )
    return result


def analyse(history: History, scenario: Scenario) -> RunMetrics:
    requests = as_log(history.requests).in_intended_order()  # columns, not records
    numbers = requests.numbers()
    total = len(requests)
    unavailable = int((~numbers.available()).sum())
    tolerance = tolerance_of(scenario.steady_state, scenario.load.rate_per_s)
    recoveries = _recoveries(requests, history.faults, tolerance)
    recovery = [r.recovery_ms for r in recoveries]
    from_heal = [ms for r in recoveries if (ms := r.recovery_from_heal_ms) is not None]
    first_fault = min((r.injected_ns for r in recoveries), default=None)
    last_recovered = max(
        (r.recovered_ns for r in recoveries if r.recovered_ns is not None), default=None
    )
    lags = [
        m.value for m in history.metrics if m.probe == "kafka_consumer_lag" and m.value is not None
    ]
    return RunMetrics(
        requests=total,
        error_rate=unavailable / total if total else 0.0,
        unknown_outcomes=int(numbers.outcome_is(Outcome.UNKNOWN).sum()),
        downtime_ms=downtime_ms(requests),
        failovers=_failovers(history),
        leadership_losses=all_losses(history.probes, history.faults),
        recovery_ms=None
        if (not recovery or None in recovery)
        else max(r for r in recovery if r is not None),
        recovery_from_heal_ms=max(from_heal) if from_heal else None,
        latency=latency_by_phase(requests, first_fault, last_recovered),
        overall=LatencySummary.of(requests),
        errors=error_counts(requests),
        kafka_lag_max=max(lags) if lags else None,
        recoveries=recoveries,
        first_fault_ns=first_fault,
        recovered_ns=last_recovered,
    )


@dataclass(frozen=True)
class SteadyStateResult:
    """The steady-state hypothesis checked over one window of the run."""

    name: str  # "before faults" | "after recovery"
    verdict: Verdict
    requests: int
    success_rate: float | None
    latency_p99_ms: float | None
    problems: tuple[str, ...] = ()
    rig: RigLoad | None = None  # how busy the machine was meanwhile (context, not judged)


def check_steady_state(
    name: str,
    history: History,
    steady: SteadyState,
    start_ns: int,
    end_ns: int,
    rate_per_s: float,
) -> SteadyStateResult:
    # Only requests answered inside the window: one sent just before a fault and caught in
    # flight by it is the fault's doing, not a sign the steady state was not reached.
    numbers = as_log(history.requests).numbers()
    in_window = numbers.ends_before(end_ns)
    in_window &= numbers.intended_ns >= start_ns
    window_size = int(in_window.sum())
    tolerance = tolerance_of(steady, rate_per_s)
    problems: list[str] = []
    available = numbers.available() & in_window
    success_rate = int(available.sum()) / window_size if window_size else None
    p99 = LatencySummary.of_latencies_ns(numbers.latency_ns[available]).p99_ms
    if window_size < tolerance.min_requests:
        problems.append(
            f"only {window_size} requests in the window (need {tolerance.min_requests})"
        )
    if success_rate is not None and success_rate < steady.success_rate_min:
        problems.append(f"success rate {success_rate:.4f} < {steady.success_rate_min}")
    if p99 is not None and p99 > steady.latency_p99_ms_max:
        problems.append(f"p99 latency {p99:.1f} ms > {steady.latency_p99_ms_max} ms")
    for probe in steady.probes:
        answers = [
            m.value
            for m in history.metrics
            if m.probe == probe.probe and start_ns <= m.at_ns < end_ns
        ]
        values = [value for value in answers if value is not None]
        if not answers or len(values) < len(answers):
            problems.append(f"probe {probe.probe} had no answer in the window")
        elif probe.probe == "http" and any(v != probe.expect_status for v in values):
            problems.append(f"probe http answered {sorted(set(values))}, not {probe.expect_status}")
        elif probe.max is not None and max(values) > probe.max:
            problems.append(f"probe {probe.probe} reached {max(values):g} > {probe.max:g}")
    verdict = Verdict.INVALID if problems else Verdict.VALID
    if not window_size:
        verdict = Verdict.UNKNOWN
    # Each rig sample covers the interval before it: the one just after the window counts.
    rig = rig_load(history.metrics, start_ns, end_ns + RIG_INTERVAL_NS)
    return SteadyStateResult(name, verdict, window_size, success_rate, p99, tuple(problems), rig)


def leader_at(probes: Sequence[ProbeSample], at_ns: int) -> tuple[str | None, int | None]:
    """The member that, by `at_ns`, had reported itself leader in the newest term seen, and
    that term; (None, None) when none had. A leader cut off by a partition goes on saying so
    in its old term, so the newest term decides, not the latest answer."""
    leading = [s for s in probes if s.role == "leader" and s.arrival_ns <= at_ns]
    if not leading:
        return None, None
    newest = max(leading, key=lambda s: (s.term if s.term is not None else -1, s.arrival_ns))
    return newest.node, newest.term
