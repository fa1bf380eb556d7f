"""A topology with two Raft clusters and no order gateway, through the whole run pipeline on
fakes: the leader of the cluster a selector names is the one killed, its failover is that
cluster's, the other cluster is untouched, and the run measures leadership without orders
(no IndexError, no request, steady state unknown, never valid)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.backends.base import RaftRole, RaftView, ServiceState
from harness.backends.fakes import FakeBackend
from harness.raft import leader_of
from harness.records import ProbeSample
from harness.run_parts import LoadRequest, RunParts
from harness.runner import run_scenario
from harness.store.summary import load_summary
from harness.toolchain import Toolchain
from harness.topology.loader import LoadedTopology
from harness.topology.plan import Plan, make_plan
from harness.verdicts import Verdict
from tests.unit.test_pipeline import FakeCluster

TOPOLOGY = """\
name: two-clusters
services:
  order:
    members: 3
    role: store
    host: "127.0.0.${member.index+10}"
    ports: [http]
    command: [none]
    raft: {cluster: orders, url: "http://${self.address.http}/status"}
  risk:
    members: 3
    role: store
    host: "127.0.0.${member.index+20}"
    ports: [http]
    command: [none]
    raft: {cluster: risk, url: "http://${self.address.http}/status"}
"""

SCENARIO = """\
name: two-clusters-kill
topology: topology.yaml
load: {rate_per_s: 10, duration_s: 2.2, warmup_s: 0}
steady_state: {window_s: 0.3}
settle_s: 0.5
faults:
  - {type: kill, at_s: 0.6, target: {cluster: risk, select: leader}, restart_after_s: 0.4}
checks: []
"""


class ClusterWatch:
    """Samples both fake clusters every 2 ms, each sample tagged with its cluster."""

    def __init__(
        self, clusters: dict[str, FakeCluster], publish: Callable[[ProbeSample], None]
    ) -> None:
        self._clusters, self._publish = clusters, publish
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
        return self.cluster_leader("orders")

    def clusters(self) -> dict[str, list[str]]:
        return {name: list(cluster.members) for name, cluster in self._clusters.items()}

    def cluster_leader(self, name: str) -> str | None:
        members = set(self._clusters[name].members)
        return leader_of({n: v for n, v in self._views.items() if n in members})

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            views = {}
            for name, cluster in self._clusters.items():
                leader, term = cluster.leader(), cluster.term
                for member in cluster.members:
                    sent = time.monotonic_ns()
                    running = cluster.backend.states.get(member) is ServiceState.RUNNING
                    role = (
                        "unreachable"
                        if not running
                        else "leader"
                        if member == leader
                        else "follower"
                    )
                    views[member] = RaftView(member, RaftRole(role), term, leader)
                    self._publish(
                        ProbeSample(
                            member,
                            time.monotonic_ns(),
                            running,
                            role,
                            term,
                            leader,
                            sent_ns=sent,
                            cluster=name,
                        )
                    )
            self._views = views


def parts(toolchain: Toolchain, backends: list[FakeBackend]) -> RunParts:
    def open_backend(
        plan: Plan, _report: Callable[[str], None]
    ) -> contextlib.AbstractContextManager[FakeBackend]:
        backends.append(FakeBackend(plan))
        return contextlib.nullcontext(backends[-1])

    def plan_of(loaded: LoadedTopology, run_dir: Path) -> Plan:
        return make_plan(loaded, run_dir, toolchain)

    def watch(plan: Plan, publish: Callable[[ProbeSample], None]) -> ClusterWatch:
        clusters = {
            name: FakeCluster(backends[-1], sorted(m.name for m in plan.raft_members(name)))
            for name in plan.raft_clusters()
        }
        # The other cluster in a much newer term: "the newest term" must be per cluster.
        clusters["orders"].term = 10
        return ClusterWatch(clusters, publish)

    def no_load(_request: LoadRequest) -> object:
        raise AssertionError("a topology without a gateway gets no order load")

    return RunParts(open_backend, plan_of, no_load, watch)  # type: ignore[arg-type]


def test_each_cluster_is_watched_and_a_gatewayless_run_measures_leadership(
    tmp_path: Path, fake_toolchain: Toolchain, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HFTCHAOS_RESULTS", str(tmp_path / "results"))
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    backends: list[FakeBackend] = []
    said: list[str] = []
    result = run_scenario(
        tmp_path / "scenario.yaml", None, said.append, parts=parts(fake_toolchain, backends)
    )
    assert result.errors == [], result.errors
    assert any("measuring leadership only" in line for line in said)
    killed = [name for action, name in backends[0].calls if action == "kill"]
    assert killed == ["risk-1"]  # the risk cluster's leader, not the orders cluster's
    assert result.metrics is not None and result.metrics.requests == 0
    [failover] = result.metrics.failovers
    assert (failover.cluster, failover.old_leader, failover.new_leader) == (
        "risk",
        "risk-1",
        "risk-2",
    )
    summary = load_summary(result.run_dir)
    assert [loss.cluster for loss in summary.leadership_losses] == ["risk"]
    assert summary.leadership_losses[0].leaderless_ms is not None
    assert {t.cluster for t in summary.status_timing} == {"orders", "risk"}
    assert [f.cluster for f in summary.failovers] == ["risk"]
    assert len(summary.clock_anchors) == 2 and summary.faults[0].applied_utc is not None
    [fault] = summary.faults
    assert (fault.leader_before, fault.leader_after) == ("risk-1", "risk-2")
    assert result.verdict is not Verdict.VALID  # no orders: nothing shows the steady state
    report = (result.run_dir / "report.html").read_text()
    assert "Leadership and the probe" in report and "risk-2 (term 2)" in report
    assert fault.applied_utc is not None and fault.applied_utc in report
