"""The reference topology for real: 3 PySyncObj engine processes, gateway, Kafka, consumer,
Toxiproxy. Kill the engine leader with SIGKILL; a new leader must take over and the same
gateway must accept orders again; after teardown no process and no port is left."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from harness.backends.base import ServiceState
from harness.orders import GatewayClient
from harness.paths import REFERENCE_TOPOLOGY
from harness.raft import HttpLeaderLookup, fetch_json
from harness.running_topologies import open_local_backend
from harness.topology.loader import load_topology
from tests.integration.conftest import bound_ports, processes_of_services


def order(index: int, side: str) -> dict[str, str | int]:
    return {
        "client_order_id": f"it-{index}",
        "account": f"acct-{index % 3}",
        "symbol": "ACME",
        "side": side,
        "price": "100.00",
        "quantity": 5,
    }


def test_leader_sigkill_new_leader_same_gateway_no_leftovers(tmp_path: Path) -> None:
    backend = open_local_backend(REFERENCE_TOPOLOGY, tmp_path / "run", report=None)
    plan = backend.plan
    with backend:
        backend.up()
        assert all(
            backend.facts(name).state is ServiceState.RUNNING
            for name in plan.services
            if plan.services[name].kind == "process"
        )
        members = {m.name: m.raft_status_url or "" for m in plan.raft_members()}
        lookup = HttpLeaderLookup(members)
        gateway = GatewayClient(plan.with_role("gateway")[0].address("http"))
        for index in range(20):
            reply = gateway.new_order(**order(index, "buy" if index % 2 else "sell"))  # type: ignore[arg-type]
            assert reply.outcome == "acked", reply.body

        old_leader = lookup.leader()
        assert old_leader is not None
        old_term = lookup.raft_views()[old_leader].term or 0
        backend.kill(old_leader)
        assert backend.facts(old_leader).state is ServiceState.STOPPED

        deadline = time.monotonic() + 10
        new_leader = None
        while time.monotonic() < deadline and new_leader is None:
            views = {n: v for n, v in lookup.raft_views().items() if n != old_leader}
            leaders = [v for v in views.values() if v.role.value == "leader"]
            if leaders and (leaders[0].term or 0) > old_term:
                new_leader = leaders[0].node
            time.sleep(0.01)
        assert new_leader is not None and new_leader != old_leader

        # Orders through the same gateway are accepted again: within 60 orders, 20 in a row
        # are acked (the first few may still meet the election's tail: unknown or error).
        streak = 0
        failed: list[str] = []
        for index in range(20, 80):
            reply = gateway.new_order(**order(index, "buy" if index % 2 else "sell"))  # type: ignore[arg-type]
            assert reply.outcome in ("acked", "unknown", "error"), reply.body
            if reply.outcome == "acked":
                streak += 1
                if streak == 20:
                    break
            else:
                streak = 0
                failed.append(f"{index} {reply.outcome} {reply.body}")
        assert streak == 20, f"no 20 acked orders in a row through the same gateway: {failed}"
        assert len(failed) <= 10, failed
        status = fetch_json(members[new_leader])
        assert status["last_exec_seq"] > 0
        gateway.close()
        pids = [backend.facts(name).pid for name in plan.services]

    assert processes_of_services(pid for pid in pids if pid) == []
    assert bound_ports(plan.all_ports) == []


def test_cli_up_detach_status_down() -> None:
    hftchaos = [sys.executable, "-m", "harness.cli"]
    up = subprocess.run([*hftchaos, "up", "--detach"], capture_output=True, text=True, timeout=240)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        status = subprocess.run(
            [*hftchaos, "status"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert status.returncode == 0
        for service in ("toxiproxy", "kafka", "n1", "n2", "n3", "gateway", "consumer"):
            assert service in status.stdout
        assert "leader" in status.stdout and "healthy" in status.stdout
    finally:
        down = subprocess.run([*hftchaos, "down"], capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    from harness.running_topologies import read_running

    running = read_running("reference")
    assert running is not None  # the state file parses
    # The supervisor's last write, after teardown, covers every service: none ready, none alive.
    services = running.state["services"]
    assert running.state["ready"] is False
    assert set(services) == set(load_topology(REFERENCE_TOPOLOGY).topology.services)
    assert [name for name, facts in services.items() if facts["alive"]] == []
    assert not running.supervisor_alive()
    pids = [int(facts["pid"]) for facts in services.values()]
    assert processes_of_services(pids) == []
