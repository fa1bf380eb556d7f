"""Building the RunSummary from a judged history: what the readers used to rebuild (each
fault's leaders and recovery instant, the recovery span) is there, typed, and agrees with the
figures it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.analysis import SteadyStateResult, analyse
from harness.checks import CheckResult
from harness.history import History
from harness.metrics import NS_PER_MS, RunMetrics
from harness.records import FaultEvent, Outcome, PhaseMark, ProbeSample, RequestRecord
from harness.report.run_data import phase_percentiles, trouble_span
from harness.rig import RigLoad
from harness.scenario.limit import Limit
from harness.scenario.model import Scenario
from harness.store.summarise import RunFacts, summarise
from harness.store.summary import (
    GitFacts,
    HostFacts,
    RecordCounts,
    RunStatus,
    ScheduleStep,
    TargetFacts,
    load_summary,
    write_summary,
)
from harness.verdicts import SloResult, Verdict, judge_slos

MS = NS_PER_MS
KILL_AT_MS = 2000
HEAL_AT_MS = 4000


@dataclass
class Judged:
    """Stands in for runner.RunResult."""

    verdict: Verdict
    metrics: RunMetrics | None
    slos: list[SloResult] = field(default_factory=list)
    steady: list[SteadyStateResult] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    history: History | None = None
    rig: RigLoad | None = None


FACTS = RunFacts(
    scenario="leader-kill",
    status=RunStatus.FINISHED,
    release="v1",
    started_at="2026-11-24T10:00:00Z",
    duration_s=9.5,
    seed=7,
    harness=GitFacts(commit="abc", dirty=False),
    target=TargetFacts(name="reference", commit="abc", dirty=False),
    host=HostFacts(cpus=2),
    records=RecordCounts(requests=800),
    errors=[],
    schedule=[ScheduleStep(offset_s=2.0, action="apply", fault=0, repeat=0)],
)


def scenario() -> Scenario:
    return Scenario.model_validate(
        {
            "name": "leader-kill",
            "load": {"rate_per_s": 100, "duration_s": 8},
            "steady_state": {"window_s": 1, "latency_p99_ms_max": 50},
            "faults": [
                {"type": "kill", "at_s": 2, "target": {"role": "engine", "select": "leader"}}
            ],
        }
    )


def leader_kill_history() -> History:
    """n1 leads in term 1 and is killed at 2 s; n2 leads in term 2 from 2.4 s; orders fail
    from the kill until n2 leads and are slow for 300 ms after; n1 comes back (healed) at 4 s
    as a follower."""
    history = History()
    history.record(PhaseMark("load", 0))
    for t in range(0, 8000, 10):
        failed = KILL_AT_MS <= t < 2400
        end = t * MS + (80 if 2400 <= t < 2700 else 2) * MS
        outcome = Outcome.UNKNOWN if failed else Outcome.ACKED
        history.record(RequestRecord("new", f"c{t}", t * MS, t * MS, end, outcome))
    for t in range(0, 8000, 50):
        arrival = t * MS
        n1_leads = t < KILL_AT_MS
        history.record(ProbeSample("n1", arrival, True, "leader" if n1_leads else "unreachable", 1))
        if t >= 2400:
            history.record(ProbeSample("n2", arrival, True, "leader", 2))
    history.record(PhaseMark("load-done", 8000 * MS))
    detail: dict[str, object] = {
        "leader_before": "n1",
        "term_before": 1,
        "removes_leader": True,
        "late_ms": 3.2,
    }
    history.record(FaultEvent(0, 0, "kill", "applied", KILL_AT_MS * MS, ("n1",), detail))
    history.record(FaultEvent(0, 0, "kill", "healed", HEAL_AT_MS * MS, ("n1",)))
    return history


def judged_run() -> tuple[Judged, RunMetrics]:
    history = leader_kill_history()
    metrics = analyse(history, scenario())
    slos = judge_slos({"failover_ms": Limit(max=800)}, metrics.values(), 1500.0)
    return Judged(Verdict.VALID, metrics, slos, history=history), metrics


def test_each_fault_carries_its_leaders_lateness_and_recovery_instant() -> None:
    run, metrics = judged_run()
    summary = summarise(FACTS, run)
    [fault] = summary.faults
    assert (fault.type, fault.targets, fault.removes_leader, fault.late_ms) == (
        "kill",
        ["n1"],
        True,
        3.2,
    )
    assert (fault.leader_before, fault.term_before) == ("n1", 1)
    assert (fault.leader_after, fault.term_after) == ("n2", 2)  # the newest term by the heal
    assert (fault.applied_ns, fault.healed_ns) == (KILL_AT_MS * MS, HEAL_AT_MS * MS)
    [recovery] = metrics.recoveries
    assert fault.recovered_ns == recovery.recovered_ns is not None
    assert fault.recovery_ms == (fault.recovered_ns - fault.applied_ns) / MS
    assert summary.metric("recovery_ms") == fault.recovery_ms
    assert summary.load is not None and summary.load.started_ns == 0


def test_failovers_keep_their_instants_and_estimator() -> None:
    run, metrics = judged_run()
    [failover] = summarise(FACTS, run).failovers
    assert (failover.old_leader, failover.new_leader) == ("n1", "n2")
    assert failover.injected_ns == KILL_AT_MS * MS
    assert failover.elected_ns is not None and failover.injected_ns < failover.elected_ns
    assert failover.failover_ms == metrics.failover_ms
    assert failover.estimator == "mid_request"  # the probe reports no role age here


def test_slos_keep_their_bound_as_numbers() -> None:
    run, _ = judged_run()
    failover, budget = summarise(FACTS, run).slos
    assert (failover.bound.min, failover.bound.max, failover.bound_text) == (None, 800.0, "<= 800")
    assert (budget.metric, budget.bound.max, budget.verdict) == (
        "downtime_budget_ms",
        1500.0,
        Verdict.VALID,
    )


def test_the_report_splits_latency_where_the_summary_did(tmp_path: Path) -> None:
    """trouble_span takes the stored span: the report's phases count what latency_by_phase
    counted, without rebuilding the instant from a count."""
    run, _ = judged_run()
    write_summary(tmp_path, summarise(FACTS, run))
    summary = load_summary(tmp_path)
    assert summary.recovery is not None and summary.latency_by_phase is not None
    assert summary.recovery.first_fault_ns == KILL_AT_MS * MS
    assert summary.recovery.recovered_ns == summary.faults[0].recovered_ns
    assert run.history is not None
    requests = pd.DataFrame(
        [(r.intended_ns, r.end_ns, r.outcome.value) for r in run.history.requests],
        columns=["intended_ns", "end_ns", "outcome"],
    )
    first, recovered = trouble_span([], summary.recovery, None)
    before, during, after = phase_percentiles(requests, first, recovered)
    stored = summary.latency_by_phase
    assert (before.count, during.count, after.count) == (
        stored.before.count,
        stored.during.count,
        stored.after.count,
    )
    # Recovered once one slow order in a 1 s window is under p99: 29 of the 30 slow ones.
    assert (during.count, summary.recovery.recovered_ns) == (29, 2690 * MS)


def test_an_aborted_run_keeps_its_facts_and_faults_without_a_judgement() -> None:
    history = leader_kill_history()
    aborted = RunFacts(**{**vars(FACTS), "status": RunStatus.ABORTED, "errors": ["stopped"]})
    summary = summarise(aborted, Judged(Verdict.UNKNOWN, None, history=history))
    assert (summary.status, summary.verdict, summary.errors) == (
        RunStatus.ABORTED,
        Verdict.UNKNOWN,
        ["stopped"],
    )
    assert summary.metrics is None and summary.recovery is None and summary.failovers == []
    [fault] = summary.faults  # what was recorded is kept: who led, how late it went in
    assert (fault.leader_before, fault.leader_after, fault.late_ms) == ("n1", "n2", 3.2)
    assert fault.recovered_ns is None and fault.recovery_ms is None


def test_a_fault_never_healed_takes_the_leader_at_the_end_of_the_history() -> None:
    history = leader_kill_history()
    history.faults = [f for f in history.faults if f.phase == "applied"]
    summary = summarise(
        FACTS, Judged(Verdict.UNKNOWN, analyse(history, scenario()), history=history)
    )
    [fault] = summary.faults
    assert fault.healed_ns is None and fault.leader_after == "n2"
    assert fault.recovery_from_heal_ms is None
