"""A suite that keeps one topology up across its runs (`share_topology: true`): real reference
topologies on the local backend, real processes, and `hftchaos suite` as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from harness.backends.base import Backend, ServiceState
from harness.paths import REPO_ROOT, results_root
from harness.suite.shared_topology import SharedTopology

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

LEADER_KILL = """\
name: shared-leader-kill
description: Kill the engine's Raft leader under light load; restarted 1.5 s later.
load: {rate_per_s: 100, duration_s: 8, warmup_s: 0}
faults:
  - type: kill
    at_s: 2.5
    target: {role: engine, select: leader}
    restart_after_s: 1.5
"""
# The same topology with the engines under clock control: a topology of its own.
CLOCK_SKEW = """\
name: shared-clock-skew
description: Skew the leader's clock by 2 s for 2 s.
load: {rate_per_s: 100, duration_s: 9, warmup_s: 0}
faults:
  - type: clock_skew
    at_s: 2.5
    duration_s: 2
    offset_ms: 2000
    target: {role: engine, select: leader}
checks: []
"""


def engine_pids(backend: Backend) -> dict[str, int | None]:
    return {
        name: backend.facts(name).pid
        for name, service in backend.plan.services.items()
        if service.role == "engine"
    }


def all_gone(pids: dict[str, int | None]) -> bool:
    return not any(pid is not None and psutil.pid_exists(pid) for pid in pids.values())


def test_a_whole_topology_is_kept_and_a_broken_or_different_one_replaced(tmp_path: Path) -> None:
    leader_kill = tmp_path / "leader-kill.yaml"
    leader_kill.write_text(LEADER_KILL)
    clock_skew = tmp_path / "clock-skew.yaml"
    clock_skew.write_text(CLOCK_SKEW)
    said: list[str] = []
    with SharedTopology(tmp_path / "suite", said.append) as shared:
        first = shared.for_scenario(leader_kill)
        first_pids = engine_pids(first)
        assert shared.for_scenario(leader_kill) is first  # whole and usable: kept
        assert engine_pids(first) == first_pids

        # A service that died between runs: the next run gets a fresh topology.
        victim, victim_pid = next((n, pid) for n, pid in first_pids.items() if pid is not None)
        os.kill(victim_pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while first.facts(victim).state is ServiceState.RUNNING:  # the backend reaps it
            assert time.monotonic() < deadline, f"{victim} still running after SIGKILL"
            time.sleep(0.01)
        second = shared.for_scenario(leader_kill)
        assert second is not first
        assert all_gone(first_pids), "the broken topology was not torn down"
        assert any("a fresh topology for this run" in line for line in said), said

        # Another clock control: another topology; the one before is torn down.
        second_pids = engine_pids(second)
        third = shared.for_scenario(clock_skew)
        assert third is not second and all_gone(second_pids)
        assert all(third.plan.services[name].clock_control for name in engine_pids(third))
        third_pids = engine_pids(third)
    assert all_gone(third_pids), "leaving the suite did not tear the topology down"
    assert sorted(p.name for p in (tmp_path / "suite").iterdir()) == [
        "topology-1",
        "topology-2",
        "topology-3",
    ]


def test_a_shared_suite_runs_every_scenario_on_one_topology_and_judges_each(
    tmp_path: Path,
) -> None:
    """Every check of the reference target (none named: all of them) on both runs: the second
    run's state holds the first run's orders, which its checks must count as sent (an order
    "nobody sent" is what no_double_fills reports when it only knew its own run's)."""
    (tmp_path / "leader-kill.yaml").write_text(LEADER_KILL)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: shared\nrelease: shared\nshare_topology: true\n"
        "scenarios:\n  - {file: leader-kill.yaml, repeat: 2}\n"
        "availability: {annual_downtime_budget_s: 9000, incidents_per_year: {leader_loss: 1}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "suite", str(suite)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "sharing topology reference with the previous run" in done.stdout
    suite_dir = results_root() / "suites" / "shared" / "latest"
    document = json.loads((suite_dir / "suite.json").read_text())
    assert [run["verdict"] for run in document["runs"]] == ["valid", "valid"]
    assert document["share_topology"] is True
    assert [p.name for p in suite_dir.resolve().iterdir() if p.name.startswith("topology-")] == [
        "topology-1"
    ]
