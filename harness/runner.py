"""One scenario run, as a pipeline: load -> check requirements -> provision -> up -> drive
load and faults while recording -> heal -> tear down -> judge -> write results.

Judging happens after the run on the recorded history only; healing happens in `finally`.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, partial
from pathlib import Path
from typing import Any

from rich.markup import escape

from harness.abort import AbortWatch
from harness.after_load import ProbeSink
from harness.analysis import SteadyStateResult, analyse, check_steady_state
from harness.backends.base import (
    Backend,
    ClockControl,
    Describes,
    LogAccess,
    NetworkControl,
    NetworkWarmUp,
)
from harness.backends.registry import chosen_backend
from harness.checks import GENERIC_PATH, CheckResult, Target, not_judged, run_checks
from harness.checks.read_back import (
    ReadBackAnswers,
    judge_read_back,
    read_back,
    write_kinds,
    written,
)
from harness.clock_anchor import take_anchor
from harness.errors import EXIT_ENVIRONMENT, EXIT_FAILED, EXIT_OK, BackendError
from harness.faults.base import FaultContext, HealRegistry
from harness.faults.effects import effect_verdicts
from harness.faults.journal_run import RunJournal
from harness.faults.registry import clock_controlled_services, needs_netfilter
from harness.history import EventBus, History
from harness.lifecycle import Interrupted
from harness.load.targets import load_addresses
from harness.memory import release_freed_memory
from harness.metrics import RunMetrics
from harness.netaddr import url_address
from harness.paths import new_run_dir, results_root
from harness.probes import PeriodicProbe, http_status_measure, kafka_lag_measure
from harness.records import PhaseMark, RequestRecord
from harness.request_log import JoinedRequests, RequestLog
from harness.results import git_facts, host_facts, point_latest, write_history, write_scenario
from harness.rig import RigLoad, rig_load, rig_probes
from harness.run_parts import (
    IdleLoad,
    LeaderWatch,
    LoadRequest,
    LoadRun,
    RunParts,
    WarmUp,
    real_parts,
)
from harness.scenario.load_checks import user_class_file
from harness.scenario.loader import LoadedScenario, load_scenario
from harness.scenario.model import LoadProfile, Scenario
from harness.status_timing import precision_warnings, status_timing
from harness.store.atomic import write_text_atomically
from harness.store.space import check_results_writable
from harness.store.summarise import RunFacts, summarise
from harness.store.summary import (
    BackendFacts,
    HealingSummary,
    RecordCounts,
    RunStatus,
    RunSummary,
    ScheduleStep,
    TargetFacts,
    write_summary,
)
from harness.timeline import Timeline, schedule
from harness.topology.model import Topology
from harness.topology.plan import Plan
from harness.toxiproxy import ToxiproxyClient
from harness.verdicts import SloResult, Verdict, judge_slos

Report = Callable[[str], None]
# Builds the live display for a run: given the event bus and the leader watch.
LiveFactory = Callable[[EventBus, LeaderWatch], AbstractContextManager[object]]
NS = 1_000_000_000
# Before the first fault, the probe's first answers say how quick the status endpoint is.
PRECISION_SAMPLES = 50
PRECISION_SAMPLE_WAIT_S = 2.0
LOAD_START_TIMEOUT_S = 60.0  # Locust's imports, its workers connecting, users spawned


@dataclass
class RunResult:
    run_dir: Path
    verdict: Verdict
    metrics: RunMetrics | None
    slos: list[SloResult] = field(default_factory=list)
    steady: list[SteadyStateResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    summary: RunSummary | None = None  # set by _finish once the run is judged (or not)
    history: History | None = None
    # Every request the safety checks judged: this run's, its warm-up's, and those of earlier
    # runs on the same (shared) topology, whose orders are in the same state.
    checked_requests: Sequence[RequestRecord] = field(default_factory=RequestLog)
    checks: list[CheckResult] = field(default_factory=list)
    stopped_by: str | None = None  # the abort condition that tripped

    @cached_property
    def rig(self) -> RigLoad | None:
        """How busy the machine was during the load (None without the history or samples)."""
        if self.history is None:
            return None
        start, end = self.history.phase_ns("load"), self.history.phase_ns("load-done")
        if start is None or end is None:
            return None
        return rig_load(self.history.metrics, start, end)

    @property
    def exit_code(self) -> int:
        if self.errors:
            return EXIT_ENVIRONMENT
        if self.stopped_by is not None:
            return EXIT_FAILED  # the system broke a limit the scenario set
        return EXIT_OK if self.verdict is Verdict.VALID else EXIT_FAILED


def check_requirements(scenario: Scenario) -> None:
    """Refuse up front what this machine cannot do, before anything starts."""
    if needs_netfilter(scenario):
        from harness.faults.netfilter import require_netfilter

        require_netfilter()


def with_clock_control(topology: Topology, scenario: Scenario) -> Topology:
    """Preload libfaketime only into services a fault may move the clock of: it has a cost."""
    return topology.with_clock_control(clock_controlled_services(scenario, topology))


def _start_side_probes(plan: Plan, scenario: Scenario, bus: EventBus) -> list[PeriodicProbe]:
    probes = []
    consumers = plan.with_role("consumer")
    if consumers and "http" in consumers[0].ports:
        url = f"http://{url_address(consumers[0].address('http'))}/status"
        probes.append(PeriodicProbe("kafka_consumer_lag", kafka_lag_measure(url), bus.publish))
    for spec in scenario.steady_state.probes:
        if spec.probe == "http" and spec.url:
            probes.append(PeriodicProbe("http", http_status_measure(spec.url), bus.publish))
    for probe in probes:
        probe.start()
    return probes


def _start_rig_probes(
    backend: Backend, plan: Plan, load: LoadRun, bus: EventBus
) -> list[PeriodicProbe]:
    def pid_of(name: str) -> Callable[[], int | None]:
        return lambda: backend.facts(name).pid

    pids = {name: pid_of(name) for name in plan.services}
    # The instrument's own footprint, in brackets: no service can be named so.
    pids["(harness)"] = os.getpid
    pids["(load generator)"] = lambda: load.pid
    # The load's workers (one per 1,000 requests/s, at most one per core), looked up when sampled:
    # they start later.
    for index in range(1, (os.cpu_count() or 1) + 1):
        pids[f"(load worker {index})"] = partial(_nth_load_pid, load, index)
    probes = rig_probes(pids, bus.publish)
    for probe in probes:
        probe.start()
    return probes


def _nth_load_pid(load: LoadRun, index: int) -> int | None:
    pids = load.pids
    return pids[index] if index < len(pids) else None


class ScenarioRun:
    """Holds everything one run touches, so every exit path can heal and stop it."""

    def __init__(
        self,
        loaded: LoadedScenario,
        release: str | None,
        report: Report,
        parts: RunParts | None = None,
        earlier_requests: Sequence[RequestRecord] = (),
    ) -> None:
        self.loaded = loaded
        # Requests of earlier runs on a topology this run shares (harness/suite/
        # shared_topology.py): their orders are in the state the safety checks read.
        self.earlier_requests = earlier_requests
        self.parts = parts if parts is not None else real_parts()
        self.scenario = loaded.scenario
        self.release = release
        self.report = report
        self.bus = EventBus()
        self.history = History()
        self.warmup_requests = RequestLog()  # appended by the warm-up load only
        self.load_addresses: tuple[str, ...] = ()
        self.read_back_answers: ReadBackAnswers | None = None
        self.read_back_problem = ""
        self.bus.subscribe(self.history.record)
        self.registry = HealRegistry()
        self.errors: list[str] = []
        # Monotonic next to UTC from the start, so faults line up with the system's logs.
        self.clock_anchor = take_anchor()
        self.warnings: list[str] = []  # shown before the run and kept in the summary
        self.after_load_warnings: list[str] = []  # measurement warnings (after_load.py)
        self.seed = random.SystemRandom().randrange(2**31)
        # The system's own checks (the topology's `target:`); the harness never reads the
        # final state it collects, only hands it back to those checks.
        self.target: Target[Any] = loaded.topology.target()
        self.final: object | None = None
        self.final_problem = "the run ended before the final state was collected"
        self.backend_facts: BackendFacts | None = None  # from a backend that Describes itself
        self.journal = RunJournal(report)
        self.healing: HealingSummary | None = None  # set when the journal is closed
        self.abort = AbortWatch(self.scenario.abort, self._stop_for, results_root())
        self.bus.subscribe(self.abort.listen)
        self._stoppable: list[Callable[[], None]] = []  # what an abort stops: timeline, load
        self.run_dir = Path()  # set by execute

    def execute(
        self,
        run_dir: Path,
        live: LiveFactory | None = None,
        running: Backend | None = None,
    ) -> None:
        """Bring the topology up for this run, or use one that is `running` already
        (tests share one; it must have been started with the clock control this needs)."""
        run_id = run_dir.name.replace(".", "")[-10:].lower()
        # The run's own files (its load logs) go here, also on a topology shared with other
        # runs, whose plan directory holds only the services' files.
        self.run_dir = run_dir
        self.registry.journal = self.journal.open(run_dir, run_id)
        try:
            if running is not None:
                self._check_shared(running.plan)
                self._describe(running)
                self._drive(running, running.plan, run_id, live, run_dir)
                return
            topology = with_clock_control(self.loaded.topology.topology, self.scenario)
            plan = self.parts.make_plan(self.loaded.topology.with_topology(topology), run_dir)
            with self.parts.open_backend(plan, self.report) as backend:
                backend.up()
                self._describe(backend)
                self._drive(backend, plan, run_id, live, run_dir)
        finally:
            # After teardown: a harness killed before this line leaves an open journal, and
            # the next command heals from it (harness/faults/stale.py).
            self.healing = self.journal.close(self.registry.errors)
            if self.healing is not None:
                self.errors.extend(e for e in self.healing.errors if e not in self.errors)

    def _describe(self, backend: Backend) -> None:
        """What a backend that Describes itself says about the run's images and engine, for
        the summary, and its warnings, said before the run."""
        if not isinstance(backend, Describes):
            return
        described = backend.describe()
        self.backend_facts = BackendFacts(
            name=described.name, engine_version=described.engine_version, images=described.images
        )
        for warning in described.warnings:
            self.warnings.append(warning)
            self.report(f"[yellow]warning:[/] {escape(warning)}")

    def _start_warm_up(self, gateway: str, run_id: str, plan: Plan) -> WarmUp | None:
        """Order flow before the measured load: a topology that has just come up answers its
        first seconds of orders several times slower (JIT, connections, Kafka producer
        start-up), and that is not the steady state the scenario is about. The warm-up
        requests are kept apart: not in the metrics, but judged by the safety checks."""
        profile = self._load_profile()
        if profile.warmup_s <= 0:
            return None
        self.report(f"warming up for {profile.warmup_s:g}s at {profile.rate_per_s:g} orders/s")
        warmup = self.parts.load(
            LoadRequest(
                gateway,
                profile.model_copy(update={"duration_s": profile.warmup_s}),
                id_prefix=f"{run_id}w",
                seed=self.seed + 1,
                on_record=self.warmup_requests.record,
                log_file=self.run_dir / "logs" / "load-warmup.log",
                run_dir=self.run_dir,
                targets=self.load_addresses,
            )
        )
        warmup.start()
        if warmup.pid is not None:
            self.journal.own("(warm-up load)", warmup.pid)
        origin = warmup.wait_started(timeout_s=LOAD_START_TIMEOUT_S)
        if origin is None:
            warmup.stop()
            raise BackendError(
                f"the warm-up load did not start within {LOAD_START_TIMEOUT_S:g} s; "
                f"see {self.run_dir}/logs/load-warmup.log"
            )
        timeout_s = profile.warmup_s + profile.request_timeout_s + 30
        return WarmUp(warmup, origin + int(profile.warmup_s * NS), timeout_s)

    def _check_shared(self, plan: Plan) -> None:
        wanted = with_clock_control(self.loaded.topology.topology, self.scenario)
        if plan.topology_name != wanted.name:
            raise BackendError(f"the running topology is {plan.topology_name}, not {wanted.name}")
        missing = [
            name
            for name, service in wanted.services.items()
            if service.clock_control and not plan.services[name].clock_control
        ]
        if missing:
            raise BackendError(f"the running topology has no clock control on {missing}")

    def _drive(
        self,
        backend: Backend,
        plan: Plan,
        run_id: str,
        live: LiveFactory | None,
        run_dir: Path,
    ) -> None:
        self.journal.record_services(backend, plan)

        self._warn_about_sources(backend, plan)
        if needs_netfilter(self.scenario) and isinstance(backend, NetworkWarmUp):
            backend.prepare_network_faults()
        probe_sink = ProbeSink(self.bus.publish)
        probe = self.parts.leader_watch(plan, probe_sink)
        probe.start()
        side_probes = _start_side_probes(plan, self.scenario, self.bus)
        context = self._fault_context(backend, plan, run_id, probe)
        timeline = Timeline(self.scenario.faults, context, self.registry, self.bus.publish)
        addresses = load_addresses(plan, self.scenario.load)
        gateway = addresses[0] if addresses else None
        self.load_addresses = addresses
        load = (
            self._load_driver(gateway, run_id, plan)
            if gateway is not None
            else IdleLoad(self.scenario.load.duration_s)
        )
        if gateway is None:
            self.report("no order gateway in the topology: measuring leadership only, no orders")
        side_probes += _start_rig_probes(backend, plan, load, self.bus)
        view = live(self.bus, probe) if live else nullcontext()
        self._stoppable = [timeline.stop, load.stop]
        self.abort.start(time.monotonic_ns())
        try:
            try:
                view.__enter__()
                warmup = self._start_warm_up(gateway, run_id, plan) if gateway is not None else None
                self._load_with_faults(load, timeline, plan, warmup)
            finally:
                # Heal first, always: whatever ended the load, nothing injected may stay.
                self.abort.stop()
                self._heal(timeline, load, context, run_id)
                for side_probe in side_probes:
                    side_probe.stop()
                # The probe watches on through the read-back and the collection (after_load).
                probe_sink.divert(time.monotonic_ns())
                view.__exit__(None, None, None)
            self._read_back(run_id, run_dir)
            logs = backend if isinstance(backend, LogAccess) else None
            self._collect_final_state(plan, run_dir, logs)
        finally:
            probe.stop()
            self.after_load_warnings = [rise.warning for rise in probe_sink.term_rises()]

    def _read_back(self, run_id: str, run_dir: Path) -> None:
        """The scenario's read-back, after healing, with the system still up (see
        harness/checks/read_back.py); its answers are kept beside the summary."""
        spec = self.scenario.read_back
        if spec is None or not self.load_addresses:
            return
        http = self.scenario.load.http
        declared = [(r.name, r.write) for r in http.requests] if http else []
        acked, _ = written(self._checked_history().requests, write_kinds(spec, declared))
        runs = [run_id, f"{run_id}w"] if self.warmup_requests else [run_id]
        self.report(f"reading back {len(set(acked))} acknowledged writes")
        try:
            for address in self.load_addresses:  # the first member that answers
                self.read_back_answers = read_back(spec, address, runs, acked)
                if not self.read_back_answers.problems:
                    break
            if self.read_back_answers is not None:
                text = json.dumps(asdict(self.read_back_answers), indent=1)
                write_text_atomically(run_dir / "read_back.json", text)
        except Exception as error:  # the check says unknown, with this reason
            self.read_back_problem = f"{type(error).__name__}: {error}"

    def _stop_for(self, reason: str) -> None:
        """An abort condition tripped (on the watch's thread): no new fault, no more load;
        the main thread then heals in its `finally` as after any other end of the load."""
        self.report(f"[bold red]aborting:[/] {escape(reason)}")
        for stop in self._stoppable:
            stop()

    def _warn_if_imprecise(self) -> None:
        """Before the first fault: is the status endpoint quick enough for the precision the
        scenario asks? Said now, and again in the summary from the whole run's samples."""
        deadline = time.monotonic() + PRECISION_SAMPLE_WAIT_S
        while time.monotonic() < deadline:
            if sum(1 for s in self.history.probes if s.reachable) >= PRECISION_SAMPLES:
                break
            time.sleep(0.05)
        timings = status_timing(list(self.history.probes))
        for warning in precision_warnings(timings, self.scenario.failover_precision_ms):
            self.report(f"measurement warning: {warning}")

    def _warn_about_sources(self, backend: Backend, plan: Plan) -> None:
        """Kernel faults act on a node's own address: say so before the run when a node's
        connections do not come from it (such a fault would then be judged not effective)."""
        if not needs_netfilter(self.scenario):
            return
        from harness.faults.effects_sources import source_warnings

        nodes = [
            (name, service.host, backend.facts(name).pid) for name, service in plan.services.items()
        ]
        for warning in source_warnings(nodes):
            self.warnings.append(warning)
            self.report(f"[yellow]warning:[/] {escape(warning)}")

    def _fault_context(
        self, backend: Backend, plan: Plan, run_id: str, probe: LeaderWatch
    ) -> FaultContext:
        toxiproxy = (
            ToxiproxyClient(plan.services[plan.toxiproxy].address("api"))
            if plan.toxiproxy
            else None
        )
        return FaultContext(
            backend=backend,
            plan=plan,
            run_id=run_id,
            leader_lookup=probe,
            clock=backend if isinstance(backend, ClockControl) else None,
            network=backend if isinstance(backend, NetworkControl) else None,
            toxiproxy=toxiproxy,
            random=random.Random(self.seed),
            guard=self.journal.guard,
            journal=self.journal.journal,
        )

    def _load_profile(self) -> LoadProfile:
        """The scenario's load, with a user class's file as an absolute path (the workers
        import it, from a directory of their own)."""
        profile = self.scenario.load
        if profile.user_class is None:
            return profile
        file = str(user_class_file(self.scenario, self.loaded.source.file).resolve())
        spec = profile.user_class.model_copy(update={"file": file})
        return profile.model_copy(update={"user_class": spec})

    def _load_driver(self, gateway: str, run_id: str, plan: Plan) -> LoadRun:
        return self.parts.load(
            LoadRequest(
                gateway,
                self._load_profile(),
                id_prefix=run_id,
                seed=self.seed,
                on_record=self.bus.publish,
                log_file=self.run_dir / "logs" / "load.log",
                run_dir=self.run_dir,
                targets=self.load_addresses,
            )
        )

    def _load_with_faults(
        self, load: LoadRun, timeline: Timeline, plan: Plan, warmup: WarmUp | None
    ) -> None:
        if warmup is not None and not self.parts.overlapping_loads:
            warmup.finish()
            warmup = None
        if warmup is None:
            self._warn_if_imprecise()
            load.start()
        else:
            # Started while the warm-up runs, so that the second or two Locust takes to start
            # is spent then; its schedule takes over from the warm-up's without a gap.
            try:
                load.start(not_before_ns=warmup.ends_ns)
            finally:
                warmup.finish()
            self._warn_if_imprecise()
        if load.pid is not None:
            self.journal.own("(load generator)", load.pid)
        # Locust takes most of a second to start; the schedule (and so the fault offsets)
        # begins when the worker says its first slot is due.
        origin = load.wait_started(timeout_s=LOAD_START_TIMEOUT_S)
        if origin is None:
            raise BackendError(
                f"the load generator did not start within {LOAD_START_TIMEOUT_S:g} s; "
                f"see {self.run_dir}/logs/load.log"
            )
        self.bus.publish(PhaseMark("load", origin))
        timeline.start(origin)
        summary = load.wait(
            self.scenario.load.duration_s + self.scenario.load.request_timeout_s + 30
        )
        self.bus.publish(PhaseMark("load-done", time.monotonic_ns()))
        if summary.exit_code not in (0, None) and self.abort.reason is None:
            self.errors.append(f"load generator exited with code {summary.exit_code}")

    def _heal(self, timeline: Timeline, load: LoadRun, context: FaultContext, run_id: str) -> None:
        timeline.stop()
        timeline.heal_remaining()
        self.registry.heal_all()
        self.errors.extend(timeline.errors + self.registry.errors)
        load.stop()
        if needs_netfilter(self.scenario):
            from harness.faults.netfilter import sweep

            sweep(run_id)
        if context.toxiproxy is not None:
            context.toxiproxy.reset()

    def _collect_final_state(self, plan: Plan, run_dir: Path, logs: LogAccess | None) -> None:
        """After every fault is healed, with the system still up: what the checks judge.
        Skipped when the target provides none of the scenario's checks."""
        if not any(name in self.target.checks for name in self.scenario.checks):
            return
        self.report(f"collecting the final state for the {escape(self.target.name)} checks")
        try:
            self.final = self.target.collect(plan, logs)
            self.target.save_final_state(run_dir, self.final)
        except Exception as error:  # the checks will say unknown, with this reason
            self.final_problem = f"{type(error).__name__}: {error}"

    def judge(
        self,
    ) -> tuple[Verdict, RunMetrics, list[SloResult], list[SteadyStateResult], list[CheckResult]]:
        metrics = analyse(self.history, self.scenario)
        slos = judge_slos(self.scenario.slo, metrics.values(), self.scenario.downtime_budget_ms)
        steady = self._steady_states()
        if self.final is None:
            checks = not_judged(self.target, self.scenario.checks, self.final_problem)
        else:
            checks = run_checks(
                self.target, self.scenario.checks, self._safety_history(), self.final
            )
        checks += self._read_back_result()
        verdicts = [s.verdict for s in slos] + [s.verdict for s in steady]
        verdicts += [c.verdict for c in checks]
        # A fault not seen to act proves nothing about resilience: at best unknown.
        verdicts += [effect.verdict for effect in effect_verdicts(self.history.faults)]
        return Verdict.worst(verdicts), metrics, slos, steady, checks

    def _read_back_result(self) -> list[CheckResult]:
        spec = self.scenario.read_back
        if spec is None:
            return []
        http = self.scenario.load.http
        declared = [(r.name, r.write) for r in http.requests] if http else []
        acked, unknown = written(self._checked_history().requests, write_kinds(spec, declared))
        return [judge_read_back(acked, unknown, self.read_back_answers, self.read_back_problem)]

    def _checked_history(self) -> History:
        """The history the safety checks judge: the warm-up's orders count there too (they
        are in the engine's state, and an acknowledged one must not be lost either)."""
        if not self.warmup_requests:
            return self.history
        return History(
            requests=JoinedRequests(self.warmup_requests, self.history.requests),
            probes=self.history.probes,
            faults=self.history.faults,
            phases=self.history.phases,
            metrics=self.history.metrics,
        )

    def _safety_history(self) -> History:
        """What the system's own safety checks judge: also every request of earlier runs on
        a shared topology (the state holds their orders; none acked may be lost since)."""
        checked = self._checked_history()
        if not self.earlier_requests:
            return checked
        return replace(checked, requests=JoinedRequests(self.earlier_requests, checked.requests))

    def _steady_states(self) -> list[SteadyStateResult]:
        load_start = self.history.phase_ns("load")
        load_end = self.history.phase_ns("load-done")
        if load_start is None or load_end is None:
            return []
        window = int(self.scenario.steady_state.window_s * NS)
        first_fault = min(
            (f.at_ns for f in self.history.faults if f.phase == "applied"), default=load_end
        )
        steady = self.scenario.steady_state
        rate = self.scenario.load.rate_per_s
        before = check_steady_state(
            "before faults",
            self.history,
            steady,
            max(load_start, first_fault - window),
            first_fault,
            rate,
        )
        # The load's final window ends with the schedule, not with the last answer.
        scheduled_end = load_start + int(self.scenario.load.duration_s * NS)
        after = check_steady_state(
            "after recovery", self.history, steady, scheduled_end - window, load_end + 1, rate
        )
        return [before, after]


def run_scenario(
    file: Path,
    release: str | None,
    report: Report,
    live: LiveFactory | None = None,
    running: Backend | None = None,
    parts: RunParts | None = None,
    backend: str | None = None,
    earlier_requests: Sequence[RequestRecord] = (),
) -> RunResult:
    """Run the scenario in `file` on a fresh topology (or on one that is `running`, which
    earlier runs sent `earlier_requests`), with the real parts on the backend chosen by
    `backend`/$HFTCHAOS_BACKEND/the topology, or `parts`."""
    loaded = load_scenario(file)
    check_requirements(loaded.scenario)
    check_results_writable(results_root())
    if parts is None:
        parts = real_parts(chosen_backend(backend, loaded.topology.topology.backend))
    run = ScenarioRun(loaded, release, report, parts, earlier_requests)
    run_dir = new_run_dir(loaded.scenario.name)
    write_scenario(run_dir, file, loaded.scenario.model_dump(mode="json", by_alias=True))
    report(f"run directory {escape(str(run_dir))}")
    started_wall = time.time()
    try:
        run.execute(run_dir, live, running)
    except BaseException as error:
        run.errors.append(f"{type(error).__name__}: {error}")
        stopped = isinstance(error, KeyboardInterrupt | Interrupted)
        _finish(run, run_dir, started_wall, RunStatus.INTERRUPTED if stopped else RunStatus.ABORTED)
        raise
    status = RunStatus.FINISHED if run.abort.reason is None else RunStatus.ABORTED
    return _finish(run, run_dir, started_wall, status)


def _finish(run: ScenarioRun, run_dir: Path, started_wall: float, status: RunStatus) -> RunResult:
    """Judge a finished run, then build its summary once and write it once."""
    counts = write_history(run_dir, run.history, run.warmup_requests, run.clock_anchor)
    result = RunResult(
        run_dir,
        Verdict.UNKNOWN,
        None,
        errors=list(run.errors),
        history=run.history,
        stopped_by=run.abort.reason,
    )
    if status is RunStatus.FINISHED:
        verdict, metrics, slos, steady, checks = run.judge()
        if run.errors:
            verdict = Verdict.worst([verdict, Verdict.UNKNOWN])
        result = RunResult(
            run_dir,
            verdict,
            metrics,
            slos,
            steady,
            list(run.errors),
            history=run.history,
            checks=checks,
        )
    result.checked_requests = run._safety_history().requests
    result.summary = summarise(_facts(run, started_wall, status, counts), result)
    write_summary(run_dir, result.summary)
    if status is RunStatus.FINISHED:
        point_latest(results_root(), run_dir)
    _publish(run_dir, status, run.report)
    return result


def _facts(
    run: ScenarioRun, started_wall: float, status: RunStatus, counts: dict[str, int]
) -> RunFacts:
    harness = git_facts()  # the reference target lives in the harness's repository
    topology = run.loaded.topology.topology
    target = TargetFacts(
        name=topology.name,
        commit=harness.commit,
        dirty=harness.dirty,
        object_path=topology.target or GENERIC_PATH,
    )
    return RunFacts(
        scenario=run.scenario.name,
        status=status,
        release=run.release,
        started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_wall)),
        duration_s=round(time.time() - started_wall, 3),
        seed=run.seed,
        harness=harness,
        target=target,
        host=host_facts(),
        backend=run.backend_facts,
        records=RecordCounts(**counts),
        errors=list(run.errors),
        failover_precision_ms=run.scenario.failover_precision_ms,
        clock_anchors=(run.clock_anchor, take_anchor()),
        warnings=list(run.warnings),
        measurement_warnings=list(run.after_load_warnings),
        schedule=[
            ScheduleStep(
                offset_s=step.offset_s,
                action="apply" if step.action == "apply" else "heal",
                fault=step.fault_index,
                repeat=step.repeat,
            )
            for step in schedule(run.scenario.faults)
        ],
        healing=run.healing,
        stopped_by=run.abort.reason,
    )


def _publish(run_dir: Path, status: RunStatus, report: Report) -> None:
    """The run is judged and on disk; index it in the results catalog and, unless it was
    stopped, write its report.html. Neither may change the run's verdict or exit code: a
    failure here is reported and the run stays as it is (`hftchaos report` and
    `hftchaos runs --rebuild` can redo both)."""
    import sqlite3

    from harness.catalog import open_catalog

    try:
        open_catalog().index_run(run_dir)
    except (sqlite3.Error, OSError) as error:
        report(f"[yellow]could not index the run in the results catalog:[/] {escape(str(error))}")
    if status is not RunStatus.FINISHED:
        return  # stopping should be quick: the report can be written later
    from harness.report.run_report import write_run_report

    # What judging and writing freed, back to the system before the report draws (the run's
    # peak would be both), and what the report freed, before a suite's next run.
    release_freed_memory()
    try:
        path = write_run_report(run_dir)
    except Exception as error:  # a report bug must not turn a judged run into a crash
        problem = f"{type(error).__name__}: {error}"
        report(f"[yellow]could not write report.html:[/] {escape(problem)}")
        return
    finally:
        release_freed_memory()
    report(f"report {escape(str(path))}")
