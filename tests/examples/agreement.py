"""The failover-agreement measurement both worked examples share: SIGKILL a third-party
cluster's leader again and again, and compare the harness's election instant with the one
the system's own log gives (each example parses its own log lines)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.backends.local import LocalBackend
from harness.clock_anchor import take_anchor
from harness.metrics import find_failover
from harness.probes import LeaderProbe
from harness.records import FaultEvent, ProbeSample
from harness.run_parts import raft_statuses
from harness.running_topologies import open_local_backend

# (log file, earliest UTC ns) -> the UTC instants (ns) of the log's election lines after it.
LogLines = Callable[[Path, int], list[int]]


class Samples:
    def __init__(self) -> None:
        self.items: list[ProbeSample] = []
        self._lock = threading.Lock()

    def add(self, sample: ProbeSample) -> None:
        with self._lock:
            self.items.append(sample)

    def start_over(self) -> None:
        """Forget what came before: an election is judged from its fault on. Kept whole, the
        list grew to some 10^5 answers (1 ms polls), and sorting it under the lock stalled the
        probe's own threads for tens of milliseconds, widening the very brackets measured."""
        with self._lock:
            self.items = []

    def snapshot(self) -> list[ProbeSample]:
        with self._lock:
            items = list(self.items)
        return sorted(items, key=lambda s: s.arrival_ns)


def settled_leader(probe: LeaderProbe, cluster: str, timeout_s: float = 60) -> tuple[str, int]:
    """A leader every member answers to, in the term it reports."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        views = probe.raft_views()
        leader = probe.cluster_leader(cluster)
        if leader is not None and all(v.leader == leader for v in views.values()):
            term = views[leader].term
            assert term is not None
            return leader, term
        time.sleep(0.05)
    raise AssertionError(f"no settled {cluster} leader in {timeout_s} s: {probe.raft_views()}")


def newer_leader(probe: LeaderProbe, cluster: str, term: int) -> bool:
    leader = probe.cluster_leader(cluster)
    if leader is None:
        return False
    view = probe.raft_views().get(leader)
    return view is not None and view.term is not None and view.term > term


def kill_and_measure(
    backend: LocalBackend,
    probe: LeaderProbe,
    samples: Samples,
    index: int,
    cluster: str,
    log_lines: LogLines,
    slack_ms: float,
) -> tuple[float, float, str, str]:
    """(harness failover_ms, harness minus log in ms, old leader, new leader)."""
    old, term = settled_leader(probe, cluster)
    anchor = take_anchor()  # the same monotonic/UTC pairing a run keeps in its summary
    offset_ns = anchor.utc_ns - anchor.monotonic_ns
    samples.start_over()
    injected_ns = time.monotonic_ns()
    backend.kill(old)
    injection = FaultEvent(index, 0, "kill", "applied", injected_ns, targets=(old,))
    # Waiting on the probe's latest views costs next to nothing; the answers are judged once,
    # after the new leader shows (and its followers have had a moment to name it).
    deadline = time.monotonic() + 60
    while not newer_leader(probe, cluster, term):
        assert time.monotonic() < deadline, f"no new {cluster} leader in 60 s"
        time.sleep(0.05)
    time.sleep(0.1)
    failover = find_failover(injection, old, term, samples.snapshot(), [], cluster)
    assert failover.elected_ns is not None, "no new leader"
    assert failover.new_leader is not None and failover.failover_ms is not None
    log_file = backend.plan.services[failover.new_leader].log_file
    time.sleep(0.2)  # the line is written as it switches; let the log reach the disk
    lines = log_lines(log_file, injected_ns + offset_ns)
    assert lines, f"no election line in {log_file} after the kill"
    logged_ns = lines[0] - offset_ns
    difference_ms = (failover.elected_ns - logged_ns) / 1e6
    election = failover.election
    assert election is not None
    # Where the probe's own bracket put the election, relative to the log line.
    print(
        f"  bracket {(election.earliest_ns - logged_ns) / 1e6:+.2f} .. "
        f"{(election.latest_ns - logged_ns) / 1e6:+.2f} ms around the log line, "
        f"reported error bound {failover.error_bound_ms:.2f} ms"
    )
    # The harness's own error bound holds the system's instant, give or take `slack_ms`: the
    # log line is written before the status endpoint shows the switch it reports (NATS: 1 ms;
    # etcd's status reads the leader its server loop copies from Raft after the line, 1-3 ms
    # later), and the clocks are read in different processes.
    assert abs(difference_ms) <= (failover.error_bound_ms or 0) + slack_ms
    backend.start(old)
    backend.wait_healthy(old)
    return failover.failover_ms, difference_ms, old, failover.new_leader


def repeated_kills(
    topology: Path,
    run_dir: Path,
    cluster: str,
    log_lines: LogLines,
    kills: int,
    slack_ms: float = 1.0,
) -> Iterator[tuple[float, float, str, str]]:
    backend = open_local_backend(topology, run_dir, report=None)
    samples = Samples()
    with backend:
        backend.up()
        probe = LeaderProbe(raft_statuses(backend.plan), samples.add)
        probe.start()
        try:
            for index in range(kills):
                yield kill_and_measure(backend, probe, samples, index, cluster, log_lines, slack_ms)
        finally:
            probe.stop()
