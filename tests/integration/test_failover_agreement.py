"""Ten leader kills, each failover_ms checked against references that share nothing with the
harness's estimate of it:

- the election: the kernel's timestamp of the new leader's first `append_entries` on the wire
  (raft_wire_observer.py, its own process; the engine cannot send one before it leads, and
  does so within its next tick after it does), compared with each of the harness's two
  estimators separately (role-age refinement and outside-in mid-request);
- the kill: when the old leader's process actually exited, seen through a pidfd by a thread
  of this test, against the harness's `injected_ns` (which the election reference does not
  cancel out: both differences start from it).

The engine's own ROLE log line is printed next to them for context only: its stamp is the
same one the role-age estimator reads, so it proves nothing about that estimator.
"""

from __future__ import annotations

import json
import os
import re
import select
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.backends.local import LocalBackend
from harness.metrics import NS_PER_MS, Failover
from harness.runner import run_scenario
from harness.topology.plan import PlannedService

ROLE_LINE = re.compile(r"^ROLE (\S+) leader term=(\d+) leader=\S+ mono_ns=(\d+)", re.MULTILINE)
OBSERVER = Path(__file__).with_name("raft_wire_observer.py")

# Bounds, each from the distribution measured over 10-kill runs on this 2-core machine with
# the shared topology under 100 orders/s (figures in issue 15's note):
# - role-age estimate vs the wire: the engine stamps its new role, then sends its first
#   append_entries in the same Raft tick, so the wire can only be later than the true election
#   and the estimate must never come after it. Measured -0.08 to -0.34 ms as a rule; twice in
#   one CI run -2.4 and -8.8 ms, the engine's own ROLE line agreeing with the estimate within
#   0.05 ms both times: the tick thread was descheduled between the stamp and the send, so the
#   wire was late, not the estimate. Hence an exact late bound (1 ms for the two clocks' read
#   order), a median that says where the estimate sits, and a generous early maximum.
ROLE_AGE_LATE_BOUND_MS = 1.0
ROLE_AGE_MEDIAN_BOUND_MS = 1.0
ROLE_AGE_EARLY_MAX_MS = 50.0
# - mid-request vs the wire: no fixed bound. The probe knows its own error: the election lies
#   after the new leader's last answer as something else was sent and before its first answer
#   as leader arrived. The test asserts the wire's instant lies inside that bracket (1 ms of
#   slack: the leader's status thread may answer a hair before its Raft thread's first send)
#   and prints the error; measured -0.6 to +34 ms, the large ones when the first leader
#   answer itself took 50-70 ms on a saturated host. The wire is late by the engine's own
#   delay from its new role to its first send (see the role-age bound): past the bracket's
#   end it may be by that much and no more (seen once in CI on a loaded host: 1.7 ms late,
#   when that send delay was itself milliseconds).
BRACKET_SLACK_MS = 1.0
# - kill stamp vs exit: the stamp is taken just before SIGKILL is sent, so the exit can only
#   follow it, after the kernel has torn the process down (measured 4-8.5 ms for an engine
#   node, 19 ms once with other work on the host; a 300 MB process takes 14-36 ms here).
#   The exit is seen by a thread of this process, which shares the GIL with the probe: on a
#   host saturated by other work one exit of ten was seen 59 ms late. So the bound that
#   matters is exact (never before the stamp: a late stamp would hide part of the outage),
#   the median says where the stamp sits, and the maximum only catches a stamp far too early.
KILL_STAMP_MEDIAN_BOUND_MS = 20.0
KILL_STAMP_MAX_MS = 200.0


@dataclass
class Exit:
    node: str
    pid: int
    exited_ns: int


class ExitWatcher:
    """Watches every engine process through a pidfd, re-arming on restarts, and records when
    each exited on CLOCK_MONOTONIC (the clock the harness stamps injections with)."""

    def __init__(self, backend: LocalBackend, nodes: list[str]) -> None:
        self._backend, self._nodes = backend, nodes
        self.exits: list[Exit] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> ExitWatcher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        poller = select.poll()
        watched: dict[int, tuple[str, int]] = {}  # fd -> (node, pid)
        seen: set[int] = set()
        while not self._stop.is_set():
            for node in self._nodes:
                pid = self._backend.facts(node).pid
                if pid is None or pid in seen:
                    continue
                try:
                    descriptor = os.pidfd_open(pid)
                except ProcessLookupError:
                    continue
                seen.add(pid)
                watched[descriptor] = (node, pid)
                poller.register(descriptor, select.POLLIN)
            for descriptor, _event in poller.poll(5):
                now = time.monotonic_ns()
                node, pid = watched.pop(descriptor)
                poller.unregister(descriptor)
                os.close(descriptor)
                self.exits.append(Exit(node, pid, now))
        for descriptor in watched:
            os.close(descriptor)


class WireObserver:
    """raft_wire_observer.py in its own process, started before the run and stopped after."""

    def __init__(self, hosts: list[str], output: Path) -> None:
        self.output = output
        self._process = subprocess.Popen([sys.executable, str(OBSERVER), str(output), *hosts])
        deadline = time.monotonic() + 10
        while not (output.exists() and output.read_text().startswith('{"ready"')):
            assert self._process.poll() is None, "the wire observer failed to start"
            assert time.monotonic() < deadline, "the wire observer did not get ready"
            time.sleep(0.05)

    def stop(self) -> list[dict[str, object]]:
        if self._process.poll() is None:
            self._process.terminate()
        assert self._process.wait(timeout=10) == 0
        records = [json.loads(line) for line in self.output.read_text().splitlines()]
        assert records[-1].get("stopped"), "the observer did not stop cleanly"
        return records


@pytest.fixture
def wire(shared_topology: LocalBackend, tmp_path: Path) -> Iterator[WireObserver]:
    hosts = sorted({member.host for member in shared_topology.plan.raft_members()})
    observer = WireObserver(hosts, tmp_path / "wire.jsonl")
    yield observer
    observer.stop()


def first_append_entries_ns(records: list[dict[str, object]], host: str, after_ns: int) -> int:
    sent = [
        int(str(r["mono_ns"]))
        for r in records
        if r.get("type") == "append_entries"
        and str(r["src"]).split(":")[0] == host
        and int(str(r["mono_ns"])) >= after_ns
    ]
    assert sent, f"no append_entries from {host} on the wire after the kill"
    return min(sent)


def test_ten_leader_kills_agree_with_the_wire_and_the_process_exit(
    shared_topology: LocalBackend, wire: WireObserver, tmp_path: Path
) -> None:
    scenario = tmp_path / "ten-kills.yaml"
    scenario.write_text("""
name: ten-kills
load: {rate_per_s: 100, duration_s: 26}
steady_state: {window_s: 1}
faults:
  - type: kill
    at_s: 1.5
    target: {role: engine, select: leader}
    restart_after_s: 1
    repeat: {times: 10, every_s: 2.2}
""")
    members = shared_topology.plan.raft_members()
    with ExitWatcher(shared_topology, [m.name for m in members]) as watcher:
        result = run_scenario(scenario, None, lambda _message: None, running=shared_topology)
    assert result.errors == [] and result.metrics is not None and result.history is not None
    failovers = result.metrics.failovers
    assert len(failovers) == 10
    records = wire.stop()
    hosts = {m.name: m.host for m in members}

    role_age, mid_request, kill_stamp, chosen, outside = [], [], [], [], []
    for failover in failovers:
        assert failover.new_leader is not None and failover.election is not None
        reference = first_append_entries_ns(
            records, hosts[failover.new_leader], failover.injected_ns
        )
        estimate = failover.election
        mid_request.append((estimate.mid_request_ns - reference) / NS_PER_MS)
        # The probe's bracket comes from its own samples; the reference it must contain
        # comes from the wire, which shares nothing with them.
        earliest, latest = estimate.earliest_ns, estimate.latest_ns
        slack = int(BRACKET_SLACK_MS * NS_PER_MS)
        # The engine's own delay from its role stamp to its first send (0 when unknown).
        send_delay = 0
        if estimate.role_age_ns is not None:
            send_delay = max(0, reference - estimate.role_age_ns)
        if not earliest - slack <= reference <= latest + slack + send_delay:
            outside.append((failover.new_leader, earliest, reference, latest, send_delay))
        if estimate.role_age_ns is not None:
            role_age.append((estimate.role_age_ns - reference) / NS_PER_MS)
        chosen.append(failover.election.estimator)
        # The figure the run reports is the chosen estimate, whichever it was.
        assert failover.elected_ns == estimate.chosen_ns
        kill_stamp.append(_exit_after_stamp_ms(failover, watcher.exits))

    print("estimator chosen per kill:", chosen)
    print("role-age  - wire (ms):", [round(d, 2) for d in role_age])
    print("mid-request - wire (ms):", [round(d, 2) for d in mid_request])
    print("exit - injected_ns (ms):", [round(d, 2) for d in kill_stamp])
    since = failovers[0].injected_ns
    print("engine ROLE log - wire (ms), context only:", _log_minus_wire(members, records, since))
    # The role-age estimator must have been usable for most kills, or its bound tests nothing.
    assert len(role_age) >= 8, chosen
    assert all(-ROLE_AGE_EARLY_MAX_MS <= d <= ROLE_AGE_LATE_BOUND_MS for d in role_age), role_age
    assert abs(statistics.median(role_age)) <= ROLE_AGE_MEDIAN_BOUND_MS, role_age
    assert outside == [], f"the wire's election fell outside the probe's bracket: {outside}"
    assert all(0 <= d <= KILL_STAMP_MAX_MS for d in kill_stamp), kill_stamp
    assert statistics.median(kill_stamp) <= KILL_STAMP_MEDIAN_BOUND_MS, kill_stamp

    # Ten elections and ten rejoins, and no node ever rewrote a committed, applied entry (the
    # leader used to rewind a follower's next index on every acknowledgement and send entries
    # again, which PySyncObj logs as "truncating already-applied log entries").
    rewrites = [
        line
        for member in members
        for line in member.log_file.read_text().splitlines()
        if "truncating already-applied" in line
    ]
    assert rewrites == []


def _exit_after_stamp_ms(failover: Failover, exits: list[Exit]) -> float:
    exit_ = next(
        (e for e in exits if e.node == failover.old_leader and e.exited_ns >= failover.injected_ns),
        None,
    )
    assert exit_ is not None, f"{failover.old_leader} was never seen to exit after the kill"
    return (exit_.exited_ns - failover.injected_ns) / NS_PER_MS


def _log_minus_wire(
    members: list[PlannedService], records: list[dict[str, object]], since_ns: int
) -> list[float]:
    hosts = {m.name: m.host for m in members}
    differences = []
    for member in members:
        for node, _term, mono in ROLE_LINE.findall(member.log_file.read_text()):
            if int(mono) < since_ns:
                continue
            sent = [
                int(str(r["mono_ns"]))
                for r in records
                if r.get("type") == "append_entries"
                and str(r["src"]).split(":")[0] == hosts[node]
                and int(str(r["mono_ns"])) >= int(mono)
            ]
            if sent:
                differences.append(round((int(mono) - min(sent)) / NS_PER_MS, 2))
    return differences
