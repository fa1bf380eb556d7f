"""A whole scenario through the run pipeline on fakes: no process, no socket. The backend, the
load and the leader watch are in-memory stand-ins (RunParts), the target is the generic one;
the pipeline itself (timeline, heal registry, judging, summary, catalog, report) is real.

The fake cluster behaves like a Raft group just enough to be judged: killing the leader
leaves it leaderless for ELECTION_S, then the lowest-named running member leads in a newer
term; while leaderless every order fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.backends.base import RaftRole, RaftView, ServiceState
from harness.backends.fakes import FakeBackend
from harness.raft import leader_of
from harness.records import Outcome, ProbeSample, RequestRecord
from harness.run_parts import LoadRequest, RunParts
from harness.runner import run_scenario
from harness.store.summary import RunStatus, load_summary
from harness.toolchain import Toolchain
from harness.topology.loader import LoadedTopology
from harness.topology.plan import Plan, make_plan
from harness.verdicts import Verdict

ELECTION_S = 0.08
NS = 1_000_000_000

TOPOLOGY = """\
name: fake
services:
  n1: {role: engine, host: 127.0.0.11, ports: [http], command: [none],
       raft: {url: "http://${self.address.http}/status"}}
  n2: {role: engine, host: 127.0.0.12, ports: [http], command: [none],
       raft: {url: "http://${self.address.http}/status"}}
  n3: {role: engine, host: 127.0.0.13, ports: [http], command: [none],
       raft: {url: "http://${self.address.http}/status"}}
  gateway: {role: gateway, ports: [http], command: [none], depends_on: [n1, n2, n3]}
"""

# The fake load answers in 1 ms, but its latency counts from the intended send, so a sender
# thread woken late on a busy CI machine (2 cores, 2 xdist workers) is latency too: at 50 ms
# the steady-state limit broke once in CI and turned a dead kill's UNKNOWN into INVALID. No
# test here judges steady state, so its limit is only wide enough not to judge the scheduler.
SCENARIO = """\
name: fake-leader-kill
topology: topology.yaml
load: {rate_per_s: 200, duration_s: 2.2, warmup_s: 0}
steady_state: {window_s: 0.3, latency_p99_ms_max: 500}
settle_s: 0.5
faults:
  - {type: kill, at_s: 0.6, target: {role: engine, select: leader}, restart_after_s: 0.4}
slo:
  failover_ms: {max: 500}
  downtime_ms: {max: 1000}
checks: []
"""


class FakeCluster:
    """Who leads the fake Raft group, derived from which members the backend has running."""

    def __init__(self, backend: FakeBackend, members: list[str]) -> None:
        self.backend, self.members = backend, members
        self.term, self.current = 1, members[0]
        self._lost_at: float | None = None
        self._lock = threading.Lock()

    def leader(self) -> str | None:
        with self._lock:
            if self.backend.states.get(self.current) is ServiceState.RUNNING:
                return self.current
            now = time.monotonic()
            self._lost_at = self._lost_at or now
            if now - self._lost_at < ELECTION_S:
                return None
            running = [
                m for m in self.members if self.backend.states.get(m) is ServiceState.RUNNING
            ]
            if not running:
                return None
            self.current, self.term, self._lost_at = running[0], self.term + 1, None
            return self.current


@dataclass
class FakeLoadResult:
    exit_code: int | None = 0


class FakeLoad:
    """Open-loop orders at the profile's rate; each fails while the cluster has no leader."""

    def __init__(self, request: LoadRequest, cluster: FakeCluster) -> None:
        self.request, self.cluster = request, cluster
        self.pid: int | None = None
        self.pids: list[int] = []
        self._origin: int | None = None
        self._thread = threading.Thread(target=self._send, daemon=True)
        self._stop = threading.Event()

    def start(self, not_before_ns: int | None = None) -> None:
        self._origin = max(time.monotonic_ns(), not_before_ns or 0)
        self._thread.start()

    def wait_started(self, timeout_s: float) -> int | None:
        return self._origin

    def wait(self, timeout_s: float) -> FakeLoadResult:
        self._thread.join(timeout=timeout_s)
        return FakeLoadResult()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _send(self) -> None:
        assert self._origin is not None
        profile = self.request.profile
        interval_ns = int(NS / profile.rate_per_s)
        for slot in range(int(profile.duration_s * profile.rate_per_s)):
            due = self._origin + slot * interval_ns
            if self._stop.wait(max(0, due - time.monotonic_ns()) / NS):
                return
            start = time.monotonic_ns()
            outcome = Outcome.ACKED if self.cluster.leader() else Outcome.ERROR
            self.request.on_record(
                RequestRecord(
                    "new",
                    f"{self.request.id_prefix}-{slot}",
                    due,
                    start,
                    start + 1_000_000,
                    outcome,
                )
            )


class FakeLeaderWatch:
    """Samples the fake cluster every 2 ms and publishes what each member would report."""

    def __init__(self, cluster: FakeCluster, publish: Callable[[ProbeSample], None]) -> None:
        self.cluster, self._publish = cluster, publish
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._views: dict[str, RaftView] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def raft_views(self) -> dict[str, RaftView]:
        return dict(self._views)

    def leader(self) -> str | None:
        return leader_of(self._views)

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            leader, term = self.cluster.leader(), self.cluster.term
            views = {}
            for member in self.cluster.members:
                sent = time.monotonic_ns()
                running = self.cluster.backend.states.get(member) is ServiceState.RUNNING
                role = (
                    "unreachable" if not running else "leader" if member == leader else "follower"
                )
                views[member] = RaftView(member, RaftRole(role), term, leader)
                self._publish(
                    ProbeSample(
                        member, time.monotonic_ns(), running, role, term, leader, sent_ns=sent
                    )
                )
            self._views = views


@pytest.fixture
def fake_run(
    tmp_path: Path, fake_toolchain: Toolchain, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, list[FakeBackend]]]:
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(tmp_path / "results"))
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    yield scenario, []


class DeafBackend(FakeBackend):
    """A backend whose kill does nothing: the fault that did nothing must not pass."""

    def kill(self, name: str) -> None:
        self._record("kill", name)


def _parts(
    fake_toolchain: Toolchain,
    backends: list[FakeBackend],
    backend_type: type[FakeBackend] = FakeBackend,
) -> RunParts:
    clusters: dict[int, FakeCluster] = {}

    def cluster_of(plan: Plan) -> FakeCluster:
        backend = backends[-1]
        return clusters.setdefault(
            id(backend), FakeCluster(backend, sorted(s.name for s in plan.raft_members()))
        )

    def open_backend(
        plan: Plan, _report: Callable[[str], None]
    ) -> contextlib.AbstractContextManager[FakeBackend]:
        backends.append(backend_type(plan))
        return contextlib.nullcontext(backends[-1])

    def plan_of(loaded: LoadedTopology, run_dir: Path) -> Plan:
        return make_plan(loaded, run_dir, fake_toolchain)

    return RunParts(
        open_backend=open_backend,  # type: ignore[arg-type]
        make_plan=plan_of,
        load=lambda request: FakeLoad(request, cluster_of(backends[-1].plan)),
        leader_watch=lambda plan, publish: FakeLeaderWatch(cluster_of(plan), publish),
    )


def test_a_leader_kill_runs_through_the_whole_pipeline_on_fakes(
    fake_run: tuple[Path, list[FakeBackend]], fake_toolchain: Toolchain
) -> None:
    scenario, backends = fake_run
    result = run_scenario(
        scenario, "fake-1", lambda _m: None, parts=_parts(fake_toolchain, backends)
    )

    assert result.errors == [], result.errors
    backend = backends[0]
    killed = next(name for action, name in backend.calls if action == "kill")
    assert killed == "n1"  # the leader at the moment of injection
    assert [a for a, n in backend.calls if n == "n1"][-2:] == ["start", "wait_healthy"]

    assert result.metrics is not None and len(result.metrics.failovers) == 1
    failover = result.metrics.failovers[0]
    assert failover.old_leader == "n1" and failover.new_leader == "n2"
    # At least the fake's election time, within the error bound the probe reports (the
    # election is placed inside the bracket of the new leader's own answers).
    assert failover.failover_ms is not None and failover.error_bound_ms is not None
    assert failover.failover_ms + failover.error_bound_ms >= ELECTION_S * 1000
    assert result.metrics.downtime_ms > 0

    summary = load_summary(result.run_dir)
    assert summary == result.summary  # written once, as built
    assert summary.status is RunStatus.FINISHED and summary.release == "fake-1"
    assert summary.verdict is result.verdict
    assert [f.new_leader for f in summary.failovers] == ["n2"]
    assert not [w for w in summary.measurement_warnings if "after the load" in w]
    assert {s.metric: s.verdict for s in summary.slos}["failover_ms"] is Verdict.VALID
    assert (result.run_dir / "summary.json").is_file()
    report = (result.run_dir / "report.html").read_text()
    assert "fake-leader-kill" in report and "failover" in report
    # No pid on a fake: the backend's own state is the witness, and the evidence says so.
    effect = summary.faults[0].effect
    assert effect is not None and effect.status == "effective"
    seen_on_n1 = effect.evidence["n1"]
    assert isinstance(seen_on_n1, dict) and seen_on_n1["source"] == "backend"


def test_an_election_while_the_harness_collects_is_named_and_kept_out_of_the_history(
    fake_run: tuple[Path, list[FakeBackend]],
    fake_toolchain: Toolchain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.runner import ScenarioRun

    scenario, backends = fake_run
    parts = _parts(fake_toolchain, backends)
    watches: list[FakeLeaderWatch] = []

    def watch(plan: Plan, publish: Callable[[ProbeSample], None]) -> FakeLeaderWatch:
        made = parts.leader_watch(plan, publish)
        assert isinstance(made, FakeLeaderWatch)
        watches.append(made)
        return made

    collect = ScenarioRun._collect_final_state

    def collect_through_an_election(run: ScenarioRun, *arguments: object) -> None:
        watches[0].cluster.term += 1  # a new term while the harness reads the final state
        time.sleep(0.05)  # the probe asks every 2 ms
        collect(run, *arguments)  # type: ignore[arg-type]

    monkeypatch.setattr(ScenarioRun, "_collect_final_state", collect_through_an_election)
    result = run_scenario(
        scenario, None, lambda _m: None, parts=dataclasses.replace(parts, leader_watch=watch)
    )

    summary = load_summary(result.run_dir)
    (warning,) = [w for w in summary.measurement_warnings if "after the load" in w]
    assert "term 2 -> 3" in warning
    assert result.history is not None
    assert max(s.term for s in result.history.probes if s.term is not None) == 2
    assert [f.new_leader for f in summary.failovers] == ["n2"]  # the run's figures unchanged


def test_the_run_journal_is_closed_and_paths_are_printed_as_text(
    tmp_path: Path,
    fake_run: tuple[Path, list[FakeBackend]],
    fake_toolchain: Toolchain,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A results root whose name looks like console markup is printed as it is, and the
    fakes' run still journals its fault and closes the journal healed."""
    import io
    import json

    from rich.console import Console

    monkeypatch.setenv("HFTCHAOS_RESULTS", str(tmp_path / "[red]results[/red]"))
    monkeypatch.setenv("HFTCHAOS_RUN_REGISTRY", str(tmp_path / "registry"))
    scenario, backends = fake_run
    printed = io.StringIO()
    console = Console(file=printed, width=400)
    result = run_scenario(scenario, None, console.print, parts=_parts(fake_toolchain, backends))
    assert f"run directory {result.run_dir}" in printed.getvalue()
    assert "[red]results[/red]" in str(result.run_dir)
    lines = [
        json.loads(line) for line in (result.run_dir / "journal.jsonl").read_text().splitlines()
    ]
    assert [line["entry"] for line in lines if line["entry"] in ("fault", "healed")] == [
        "fault",
        "healed",
    ]
    assert lines[-1] == {"entry": "run_healed", "by": "the harness", "errors": []}
    summary = load_summary(result.run_dir)
    assert summary.healing is not None and summary.healing.faults == 1
    assert not list((tmp_path / "registry").iterdir()), "a healed run leaves no registry entry"


def test_a_kill_that_did_nothing_makes_the_run_unknown_never_valid(
    fake_run: tuple[Path, list[FakeBackend]], fake_toolchain: Toolchain
) -> None:
    scenario, backends = fake_run
    parts = _parts(fake_toolchain, backends, DeafBackend)
    result = run_scenario(scenario, None, lambda _m: None, parts=parts)

    assert result.errors == [] and result.verdict is Verdict.UNKNOWN
    summary = load_summary(result.run_dir)
    assert summary.verdict is Verdict.UNKNOWN
    effect = summary.faults[0].effect
    assert effect is not None and effect.status == "not_effective"
    assert "running" in effect.reason
    assert "not effective" in (result.run_dir / "report.html").read_text()


class LoggedLoad:
    """A run's load, noting in one list shared by the run's loads what was done to it."""

    def __init__(self, load: FakeLoad, log: list[str]) -> None:
        self.load, self.log = load, log
        self.name = "warm-up" if load.request.id_prefix.endswith("w") else "load"
        self.pid, self.pids = load.pid, load.pids
        self.origin_ns: int | None = None

    def start(self, not_before_ns: int | None = None) -> None:
        self.log.append(f"start {self.name}")
        self.load.start(not_before_ns)

    def wait_started(self, timeout_s: float) -> int | None:
        self.origin_ns = self.load.wait_started(timeout_s)
        return self.origin_ns

    def wait(self, timeout_s: float) -> FakeLoadResult:
        self.log.append(f"wait {self.name}")
        return self.load.wait(timeout_s)

    def stop(self) -> None:
        self.load.stop()


@pytest.mark.parametrize("overlapping", [True, False])
def test_the_measured_load_takes_over_from_the_warm_up_without_a_gap(
    fake_run: tuple[Path, list[FakeBackend]], fake_toolchain: Toolchain, overlapping: bool
) -> None:
    """Started while the warm-up runs (its own start-up spent then), the measured load's
    slot 0 is the warm-up's scheduled end; with a fixed Locust master address (remote
    workers) only one load runs at a time, the warm-up first."""
    scenario, backends = fake_run
    scenario.write_text(SCENARIO.replace("warmup_s: 0", "warmup_s: 0.5"))
    log: list[str] = []
    loads: list[LoggedLoad] = []
    parts = _parts(fake_toolchain, backends)
    fake_load = parts.load

    def logged(request: LoadRequest) -> LoggedLoad:
        load = fake_load(request)
        assert isinstance(load, FakeLoad)
        loads.append(LoggedLoad(load, log))
        return loads[-1]

    parts = dataclasses.replace(parts, load=logged, overlapping_loads=overlapping)
    result = run_scenario(scenario, None, lambda _m: None, parts=parts)

    assert result.errors == [], result.errors
    warmup, measured = sorted(loads, key=lambda load: load.name != "warm-up")
    assert warmup.origin_ns is not None and measured.origin_ns is not None
    if overlapping:
        assert log[:3] == ["start warm-up", "start load", "wait warm-up"]
        assert measured.origin_ns == warmup.origin_ns + 500_000_000
    else:
        assert log[:3] == ["start warm-up", "wait warm-up", "start load"]
        # The fake's wait ends at its last slot, one 5 ms interval before the schedule's end.
        assert measured.origin_ns >= warmup.origin_ns + 495_000_000
