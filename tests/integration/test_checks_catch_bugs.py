"""Each safety check, proven able to fail: the reference system with a deliberate bug switched on
(HFTCHAOS_REFERENCE_BUGS, targets/reference/bugs.py) runs a short fault sequence, and the check
must say invalid with the right evidence; the same sequences without any bug are valid.

Three topologies: one clean run of both sequences, one run of the process-fault sequence with
the bugs that lose, duplicate, skip and re-time executions, and one run of the clock-step
sequence with the bugs that split the replicas and let a clock step reach the stream.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.backends.health import wait_for_raft_leader
from harness.backends.local import LocalBackend
from harness.checks import CheckResult, run_checks
from harness.history import History
from harness.orders import GatewayClient
from harness.paths import REFERENCE_TOPOLOGY
from harness.records import Outcome, PhaseMark, RequestRecord
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan
from harness.verdicts import Verdict
from targets.reference.bugs import ENVIRONMENT_VARIABLE, SKIPPED_AFTER_FAILOVER
from targets.reference.checks import CHECKS, TARGET
from targets.reference.checks.collect import collect_final_state, wait_settled
from targets.reference.checks.model import FinalState
from targets.reference.checks.replay import replay_run

SETTLE_S = 0.3
LOST_ORDERS = ("lost-0", "lost-1", "lost-2")
CLOCK_STEP_MS = -3000


@dataclass
class Run:
    backend: LocalBackend
    history: History
    gateway: GatewayClient
    log: list[str]

    @property
    def gateway_address(self) -> str:
        return self.backend.plan.with_role("gateway")[0].address("http")

    @property
    def members(self) -> dict[str, str]:
        return {m.name: m.raft_status_url or "" for m in self.backend.plan.raft_members()}

    def leader(self) -> str:
        return wait_for_raft_leader(self.members, timeout_s=15)

    def new_leader(self, old: str) -> str:
        deadline = time.monotonic() + 15
        while True:
            leader = self.leader()
            if leader != old:
                return leader
            assert time.monotonic() < deadline, f"{old} still leads"
            time.sleep(0.05)

    def order(
        self, order_id: str, side: str, price: str, client: GatewayClient | None = None
    ) -> str:
        reply = (client or self.gateway).new_order(order_id, "acct-" + side, "ACME", side, price, 5)
        executions = reply.body.get("executions")
        self.history.record(
            RequestRecord(
                kind="new",
                client_order_id=order_id,
                intended_ns=reply.start_ns,
                start_ns=reply.start_ns,
                end_ns=reply.end_ns,
                outcome=Outcome(reply.outcome),
                http_status=reply.http_status,
                fills=len(executions) if isinstance(executions, list) else 0,
                reason=f"{reply.body.get('reason', '')} {reply.body.get('detail', '')}",
            )
        )
        return reply.outcome

    def settle(self) -> None:
        settled, problem = wait_settled(self.backend.plan.raft_members(), None, 0.1, 15)
        assert settled, problem

    def final_state(self) -> FinalState:
        final = collect_final_state(
            self.backend.plan, self.backend, settle_s=SETTLE_S, timeout_s=20
        )
        TARGET.save_final_state(self.backend.plan.run_dir, final)  # for the replays below
        return final


@contextmanager
def topology(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bugs: str) -> Iterator[Run]:
    """The reference topology with clock control on the engines and `bugs` switched on: the
    local backend hands its own environment to the services, restarted ones included."""
    if bugs:
        monkeypatch.setenv(ENVIRONMENT_VARIABLE, bugs)
    else:
        monkeypatch.delenv(ENVIRONMENT_VARIABLE, raising=False)
    loaded = load_topology(REFERENCE_TOPOLOGY)
    topology = loaded.topology.with_clock_control(loaded.topology.services_with_role("engine"))
    plan = make_plan(loaded.with_topology(topology), tmp_path / "run", locate_toolchain())
    log: list[str] = []
    with LocalBackend(plan, log.append) as backend:
        backend.up()
        gateway = GatewayClient(plan.with_role("gateway")[0].address("http"))
        history = History()
        history.record(PhaseMark("load", time.monotonic_ns()))
        try:
            yield Run(backend, history, gateway, log)
        finally:
            gateway.close()


def process_faults(run: Run) -> dict[str, str]:
    """Trades around two leader kills, the second with the followers paused while three orders
    come in (so only the doomed leader ever holds them). Returns who led when."""
    backend = run.backend
    for index in range(30):
        run.order(f"sell-{index}", "sell", "100.00")
    for index in range(4):
        run.order(f"buy-{index}", "buy", "100.00")
    run.settle()  # every execution confirmed in Kafka before the first failover

    first = run.leader()
    backend.kill(first)
    second = run.new_leader(first)
    for index in range(4, 12):
        run.order(f"buy-{index}", "buy", "100.00")
    backend.start(first)
    backend.wait_healthy(first)
    run.settle()

    third = routed_leader(run)
    followers = [name for name in run.members if name != third]
    for follower in followers:
        backend.pause(follower)
    try:
        senders = [
            threading.Thread(
                target=run.order,
                args=(order_id, "buy", "95.00", GatewayClient(run.gateway_address)),
            )
            for order_id in LOST_ORDERS
        ]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        backend.kill(third)
    finally:
        for follower in followers:
            backend.resume(follower)
    fourth = run.new_leader(third)
    backend.start(third)
    backend.wait_healthy(third)
    for index in range(12, 18):
        run.order(f"buy-{index}", "buy", "100.00")
    return {"first": first, "second": second, "third": third, "fourth": fourth}


def routed_leader(run: Run) -> str:
    """The leader, once the gateway has just sent it an order (so it routes there next)."""
    for attempt in range(5):
        leader = run.leader()
        run.order(f"warm-{attempt}", "buy", "95.00")
        if run.leader() == leader:
            return leader
    raise AssertionError("the leader keeps changing")


def outcomes(run: Run) -> str:
    return "\n".join(
        f"{r.client_order_id} {r.outcome.value} {r.http_status} {r.reason}"
        for r in run.history.requests
        if r.outcome is not Outcome.ACKED
    )


def clock_step(run: Run) -> str:
    """Trades while the leader's wall clock is stepped back; returns that leader."""
    for index in range(10):
        run.order(f"ask-{index}", "sell", "101.00")
    for index in range(3):
        run.order(f"bid-{index}", "buy", "101.00")
    leader = run.leader()
    run.backend.set_clock_offset(leader, CLOCK_STEP_MS)
    try:
        for index in range(3, 6):
            run.order(f"bid-{index}", "buy", "101.00")
    finally:
        run.backend.set_clock_offset(leader, 0)
    for index in range(6, 8):
        run.order(f"bid-{index}", "buy", "101.00")
    return leader


def results(run: Run, final: FinalState) -> dict[str, CheckResult]:
    judged = run_checks(TARGET, CHECKS, run.history, final)
    assert len(judged) == 6 and all(r.verdict is not Verdict.NOT_APPLICABLE for r in judged)
    return {result.name: result for result in judged}


def violations(result: CheckResult) -> str:
    return "\n".join(result.violations)


def test_without_bugs_every_check_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with topology(tmp_path, monkeypatch, bugs="") as run:
        process_faults(run)
        clock_step(run)
        final = run.final_state()
    judged = results(run, final)
    for result in judged.values():
        assert result.verdict is Verdict.VALID, (result.name, result.explanation, result.violations)
    # The sequences did what they are for: acked orders survived two failovers, none of the
    # three sent to the doomed leader was acked, and the clock step was held by the guard.
    assert judged["no_lost_acks"].counts["acked_orders"] >= 50, outcomes(run)
    assert not any(
        r.outcome is Outcome.ACKED for r in run.history.requests if r.client_order_id in LOST_ORDERS
    )
    assert judged["monotonic_timestamps"].counts["held_by_guard"] >= 1
    assert judged["kafka_gap_free"].counts["committed_seqs"] >= 18
    rows = replay_run(run.backend.plan.run_dir)
    assert [row.node for row in rows] == ["n1", "n2", "n3"]
    assert all(row.match and row.executions_match for row in rows), rows
    assert TARGET.replay(run.backend.plan.run_dir).matched  # what `hftchaos replay` says


def test_lost_acks_double_fills_kafka_gaps_and_replay_are_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bugs = "ack_before_commit,reapply_on_new_leader,skip_publish_after_failover,wall_clock_in_apply"
    with topology(tmp_path, monkeypatch, bugs) as run:
        leaders = process_faults(run)
        final = run.final_state()
    judged = results(run, final)

    lost = judged["no_lost_acks"]
    assert lost.verdict is Verdict.INVALID, lost
    doomed = [r for r in run.history.requests if r.client_order_id in LOST_ORDERS]
    assert all(r.outcome is Outcome.ACKED for r in doomed), (leaders, outcomes(run))
    for order_id in LOST_ORDERS:
        assert f"order {order_id} acked" in violations(lost)
    assert "is missing on n1, n2, n3" in violations(lost)

    doubled = judged["no_double_fills"]
    assert doubled.verdict is Verdict.INVALID, doubled
    # The second leader proposed the last order (buy-3) again under a fresh id, and it filled.
    assert "order buy-3~again executed in seq" in violations(doubled)
    assert "but no client sent it; it repeats buy-3" in violations(doubled)
    assert doubled.counts["unrequested_orders"] >= 1

    kafka = judged["kafka_gap_free"]
    assert kafka.verdict is Verdict.INVALID, kafka
    # Seqs 1-4 were confirmed before the first kill; the next leader skipped at least the next
    # five (more when a leader took over twice, or the mark moved before the takeover).
    gap = re.search(r"executions 5-(\d+) \((\d+) seqs\) never reached Kafka", violations(kafka))
    assert gap is not None, (leaders, kafka)
    assert int(gap[2]) >= SKIPPED_AFTER_FAILOVER, (leaders, kafka)

    replayed = judged["deterministic_replay"]
    assert replayed.verdict is Verdict.INVALID, replayed
    assert replayed.counts["mismatched_nodes"] == 3
    for node in ("n1", "n2", "n3"):
        assert f"{node}: replaying" in violations(replayed)
    assert "first difference at execution seq 1: ts_ns" in violations(replayed)
    rows = replay_run(run.backend.plan.run_dir)
    assert [row.match for row in rows] == [False, False, False]
    assert not TARGET.replay(run.backend.plan.run_dir).matched


def test_diverged_replica_and_clock_step_in_the_stream_are_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with topology(tmp_path, monkeypatch, "diverge_replica,unguarded_timestamps") as run:
        stepped = clock_step(run)
        final = run.final_state()
    judged = results(run, final)

    replicas = judged["replicas_identical"]
    assert replicas.verdict is Verdict.INVALID, replicas
    text = violations(replicas)
    assert "state hashes differ at applied index" in text
    assert "n1, n2 " in text  # the two healthy replicas agree with each other
    assert "execution seq 1 differs on n3 from n1, n2: quantity 6 vs 5" in text

    timestamps = judged["monotonic_timestamps"]
    assert timestamps.verdict is Verdict.INVALID, timestamps
    text = violations(timestamps)
    assert "execution seq 4 (order bid-3) is" in text
    assert "ms earlier than seq 3" in text
    assert f"by leader {stepped} in term" in text
    # Seq 3 (bid-2) was stamped by the leader's true clock while bid-2 was in flight, seq 4
    # (bid-3) by the clock stepped back 3 s while bid-3 was: so the step back seen in the
    # stream is 3 s less the time between the two stamps, which lies between the gap from
    # bid-2's answer to bid-3's send and the span from bid-2's send to bid-3's answer (our own
    # monotonic stamps; wall and monotonic time run at one rate: NTP slews both).
    back_ms = float(text.split(" is ")[1].split(" ms")[0])
    sent = {r.client_order_id: r for r in run.history.requests}
    shortest_ms = (sent["bid-3"].start_ns - sent["bid-2"].end_ns) / 1e6
    longest_ms = (sent["bid-3"].end_ns - sent["bid-2"].start_ns) / 1e6
    print(f"stepped back {back_ms:.3f} ms; stamps {shortest_ms:.1f}-{longest_ms:.1f} ms apart")
    rounding_ms = 0.001  # the check prints the step to the microsecond
    assert -CLOCK_STEP_MS - longest_ms - rounding_ms <= back_ms
    assert back_ms <= -CLOCK_STEP_MS - shortest_ms + rounding_ms
