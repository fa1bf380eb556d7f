"""Ten leader kills: the harness's failover_ms must agree within 10 ms with the elections the
engine nodes logged themselves (ROLE lines carry the node's CLOCK_MONOTONIC, the same clock
the harness stamps injections with)."""

from __future__ import annotations

import re
from pathlib import Path

from harness.backends.local import LocalBackend
from harness.metrics import NS_PER_MS
from harness.runner import run_scenario

ROLE_LINE = re.compile(r"^ROLE (\S+) leader term=(\d+) leader=\S+ mono_ns=(\d+)", re.MULTILINE)


def test_ten_leader_kills_agree_with_engine_logs(
    shared_topology: LocalBackend, tmp_path: Path
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
    result = run_scenario(scenario, None, lambda _message: None, running=shared_topology)
    assert result.errors == [] and result.metrics is not None
    failovers = result.metrics.failovers
    assert len(failovers) == 10

    elections: list[tuple[str, int, int]] = []  # (node, term, mono_ns) of "became leader"
    for member in shared_topology.plan.raft_members():
        text = member.log_file.read_text()
        elections += [(n, int(t), int(m)) for n, t, m in ROLE_LINE.findall(text)]

    differences = []
    for failover in failovers:
        assert failover.new_leader is not None and failover.elected_ns is not None
        logged = min(
            (
                mono
                for node, term, mono in elections
                if node == failover.new_leader and mono >= failover.injected_ns
            ),
            default=None,
        )
        assert logged is not None, f"{failover.new_leader} never logged its election"
        engine_ms = (logged - failover.injected_ns) / NS_PER_MS
        harness_ms = failover.failover_ms
        assert harness_ms is not None
        differences.append(harness_ms - engine_ms)
    print("harness - engine failover ms:", [round(d, 2) for d in differences])
    assert all(abs(d) <= 10 for d in differences), differences

    # Ten elections and ten rejoins, and no node ever rewrote a committed, applied entry (the
    # leader used to rewind a follower's next index on every acknowledgement and send entries
    # again, which PySyncObj logs as "truncating already-applied log entries").
    rewrites = [
        line
        for member in shared_topology.plan.raft_members()
        for line in member.log_file.read_text().splitlines()
        if "truncating already-applied" in line
    ]
    assert rewrites == []
