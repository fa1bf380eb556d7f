"""NATS JetStream, a Raft system this project did not write, read through its own /raftz with
no glue code: over repeated SIGKILLs of the meta leader, the harness's failover instant must
agree with the system's own "Switching to leader" log line (p99 within 5 ms), and the same
run pipeline (`hftchaos run`) must measure a leader kill of it end to end.

Needs `hftchaos setup --example nats`; run with `nox -s examples`.
"""

from __future__ import annotations

import calendar
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.local import LocalBackend
from harness.clock_anchor import take_anchor
from harness.metrics import find_failover, percentile
from harness.probes import LeaderProbe
from harness.records import FaultEvent, ProbeSample
from harness.run_parts import raft_statuses
from harness.runner import run_scenario
from harness.session import open_local_backend
from harness.store.summary import load_summary
from harness.toolchain._examples import example, is_current
from harness.toolchain._paths import cache_home

EXAMPLE = Path(__file__).resolve().parents[2] / "targets" / "examples" / "nats"
TOPOLOGY = EXAMPLE / "topology.yaml"
CLUSTER = "meta"
KILLS = 10
AGREEMENT_MS = 5.0
# [pid] 2026/12/01 12:40:00.123456 [DBG] RAFT [yrzKKRBu - _meta_] Switching to leader
SWITCH = re.compile(
    r"^(?:\[\d+\] )?(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) "
    r"\[DBG\] RAFT \[\w+ - _meta_\] Switching to leader"
)


@pytest.fixture(scope="module", autouse=True)
def _nats_built() -> None:
    chosen = example("nats")
    if not is_current(chosen, chosen.binary(cache_home())):
        pytest.fail("nats-server is not built: run `hftchaos setup --example nats`")


def switch_lines_ns(log_file: Path, after_wall_ns: int) -> list[int]:
    """The UTC instants (ns since the epoch) of the log's "Switching to leader" lines."""
    found = []
    for line in log_file.read_text(errors="replace").splitlines():
        match = SWITCH.match(line)
        if match is None:
            continue
        year, month, day, hour, minute, second, micros = (int(g) for g in match.groups())
        epoch_s = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
        instant = epoch_s * 1_000_000_000 + micros * 1000
        if instant >= after_wall_ns:
            found.append(instant)
    return found


class Samples:
    def __init__(self) -> None:
        self.items: list[ProbeSample] = []
        self._lock = threading.Lock()

    def add(self, sample: ProbeSample) -> None:
        with self._lock:
            self.items.append(sample)

    def snapshot(self) -> list[ProbeSample]:
        with self._lock:
            return sorted(self.items, key=lambda s: s.arrival_ns)


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[tuple[LocalBackend, LeaderProbe, Samples]]:
    backend = open_local_backend(TOPOLOGY, tmp_path / "run", report=None)
    samples = Samples()
    with backend:
        backend.up()
        probe = LeaderProbe(raft_statuses(backend.plan), samples.add)
        probe.start()
        try:
            yield backend, probe, samples
        finally:
            probe.stop()


def settled_leader(probe: LeaderProbe, timeout_s: float = 60) -> tuple[str, int]:
    """A leader every member answers to, in the term it reports."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        views = probe.raft_views()
        leader = probe.cluster_leader(CLUSTER)
        if leader is not None and all(v.leader == leader for v in views.values()):
            term = views[leader].term
            assert term is not None
            return leader, term
        time.sleep(0.05)
    raise AssertionError(f"no settled meta leader in {timeout_s} s: {probe.raft_views()}")


def kill_and_measure(
    backend: LocalBackend, probe: LeaderProbe, samples: Samples, index: int
) -> tuple[float, float, str, str]:
    """(harness failover_ms, harness minus log in ms, old leader, new leader)."""
    old, term = settled_leader(probe)
    anchor = take_anchor()  # the same monotonic/UTC pairing a run keeps in its summary
    offset_ns = anchor.utc_ns - anchor.monotonic_ns
    injected_ns = time.monotonic_ns()
    backend.kill(old)
    injection = FaultEvent(index, 0, "kill", "applied", injected_ns, targets=(old,))
    deadline = time.monotonic() + 60
    failover = None
    while time.monotonic() < deadline:
        failover = find_failover(injection, old, term, samples.snapshot(), [], CLUSTER)
        if failover.elected_ns is not None:
            break
        time.sleep(0.1)
    assert failover is not None and failover.elected_ns is not None, "no new meta leader"
    assert failover.new_leader is not None and failover.failover_ms is not None
    log_file = backend.plan.services[failover.new_leader].log_file
    time.sleep(0.2)  # the line is written as it switches; let the log reach the disk
    lines = switch_lines_ns(log_file, injected_ns + offset_ns)
    assert lines, f"no 'Switching to leader' line in {log_file} after the kill"
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
    # The harness's own error bound holds the system's instant (1 ms: the log line is written
    # just before the switch it reports, and the clocks are read in different processes).
    assert abs(difference_ms) <= (failover.error_bound_ms or 0) + 1.0
    backend.start(old)
    backend.wait_healthy(old)
    return failover.failover_ms, difference_ms, old, failover.new_leader


def test_failover_agrees_with_the_systems_own_election_log(
    nats: tuple[LocalBackend, LeaderProbe, Samples],
) -> None:
    backend, probe, samples = nats
    differences = []
    for index in range(KILLS):
        failover_ms, difference_ms, old, new = kill_and_measure(backend, probe, samples, index)
        differences.append(difference_ms)
        print(
            f"kill {index + 1}: {old} -> {new}, failover_ms {failover_ms:.1f}, "
            f"harness - log {difference_ms:+.2f} ms"
        )
    magnitudes = [abs(d) for d in differences]
    p99 = percentile(magnitudes, 0.99)
    print(f"|harness - log| p50 {percentile(magnitudes, 0.5):.2f} ms, p99 {p99:.2f} ms")
    assert p99 is not None and p99 <= AGREEMENT_MS, differences


def test_leader_kill_scenario_runs_through_the_pipeline() -> None:
    result = run_scenario(EXAMPLE / "scenarios" / "leader-kill.yaml", None, report=print)
    summary = load_summary(result.run_dir)
    [failover] = summary.failovers
    assert failover.cluster == CLUSTER and failover.new_leader is not None
    assert failover.failover_ms is not None and failover.failover_ms > 0
    assert failover.error_bound_ms is not None
    losses = [loss for loss in summary.leadership_losses if loss.cluster == CLUSTER]
    assert losses and losses[0].leaderless_ms is not None
    [timing] = summary.status_timing
    assert timing.cluster == CLUSTER and timing.samples > 0
    print(
        f"failover_ms {failover.failover_ms:.1f} (bound {failover.error_bound_ms} ms), "
        f"leaderless_ms {losses[0].leaderless_ms}, status p99 {timing.round_trip_p99_ms} ms"
    )
