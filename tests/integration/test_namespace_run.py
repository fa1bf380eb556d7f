"""`hftchaos run` end to end with `network: namespaces`: the reference topology (Kafka,
Toxiproxy, three engines, gateway, consumer) with every service in a network namespace of
its own, a real leader isolation judged on it, and nothing left behind, also when the run is
stopped by SIGTERM in the middle of the partition.

The topology is the shipped reference topology with one line added, so this is what a user
gets by writing `network: namespaces`; test_namespace_network.py shows, with programs that do
not bind their source address, why they would want it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.store.summary import RunStatus, RunSummary, load_summary
from tests.integration.test_namespace_network import machine_network_state

# Two whole runs of the reference topology in namespaces (about 70 s in CI): `nox -s long`;
# the namespace network itself is proven in CI (test_namespace_network.py).
pytestmark = [
    pytest.mark.integration,
    pytest.mark.long,
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and kernel faults need root"),
]

REPOSITORY = Path(__file__).parents[2]
TAG = "hftchaos:"  # how every fault rule is tagged (harness/faults/netfilter.py)
ISOLATION = """
name: {name}
topology: {topology}
load: {{rate_per_s: 100, duration_s: {duration_s}, users: 32}}
steady_state: {{window_s: 1, success_rate_min: 0.99, latency_p99_ms_max: 250}}
faults:
  - {{type: partition, at_s: 3, duration_s: {fault_s}, isolate: {{role: engine, select: leader}}}}
slo:
  failover_ms: {{max: 1000}}
  downtime_ms: {{max: 3000}}
"""


def _scenario(tmp_path: Path, name: str, duration_s: int, fault_s: int) -> Path:
    topology = tmp_path / "topology.yaml"
    reference = (REPOSITORY / "targets" / "reference" / "topology.yaml").read_text()
    topology.write_text(
        reference.replace("name: reference\n", "name: reference-ns\nnetwork: namespaces\n", 1)
    )
    scenario = tmp_path / f"{name}.yaml"
    text = ISOLATION.format(name=name, topology=topology, duration_s=duration_s, fault_s=fault_s)
    scenario.write_text(text)
    return scenario


def _harness(tmp_path: Path, scenario: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(scenario)],
        env={**os.environ, "HFTCHAOS_RESULTS": str(tmp_path / "results")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPOSITORY,
    )


def _summary(tmp_path: Path, name: str) -> RunSummary:
    return load_summary(next((tmp_path / "results").glob(f"{name}/*/summary.json")).parent)


def _rules_in_run_namespaces() -> list[str]:
    """The harness's tagged rules inside every run namespace there is (faults in namespace
    mode live there, not in the host's tables)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    found = []
    for line in listed.stdout.splitlines():
        namespace = line.split()[0] if line.strip() else ""
        if not namespace.startswith("hftchaos-"):
            continue
        rules = subprocess.run(
            ["ip", "netns", "exec", namespace, "iptables-save", "-t", "filter"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        found += [
            rule for rule in rules.splitlines() if rule.startswith("-A") and "hftchaos:" in rule
        ]
    return found


def test_a_leader_isolation_runs_on_the_reference_topology_in_namespaces(tmp_path: Path) -> None:
    before = machine_network_state()
    harness = _harness(tmp_path, _scenario(tmp_path, "ns-isolation", duration_s=10, fault_s=3))
    printed, _ = harness.communicate(timeout=240)
    summary = _summary(tmp_path, "ns-isolation")
    assert harness.returncode == 0, printed[-4000:]
    assert summary.passed, printed[-4000:]
    (partition,) = summary.faults
    assert partition.effect is not None and partition.effect.status == "effective", partition
    assert partition.effect.evidence["packets_dropped"] > 0
    assert [loss.new_leader for loss in summary.leadership_losses if loss.new_leader], summary
    state = next((tmp_path / "results").glob("ns-isolation/*/state.json")).read_text()
    assert "10.231." in state and "127.0.0.11" not in state, "the engines were not in namespaces"
    assert machine_network_state() == before, "the run left namespaces, links or rules"


def test_sigterm_mid_partition_in_namespaces_heals_and_removes_the_network(
    tmp_path: Path,
) -> None:
    before = machine_network_state()
    harness = _harness(tmp_path, _scenario(tmp_path, "ns-sigterm", duration_s=40, fault_s=30))
    deadline = time.monotonic() + 120
    while not _rules_in_run_namespaces():
        assert harness.poll() is None, "the run ended before its partition"
        assert time.monotonic() < deadline, "the partition never appeared"
        time.sleep(0.2)
    assert machine_network_state()["namespaces"] != before["namespaces"], "proves nothing"
    harness.send_signal(signal.SIGTERM)
    printed, _ = harness.communicate(timeout=90)
    assert harness.returncode == 130, printed[-4000:]
    assert _summary(tmp_path, "ns-sigterm").status is RunStatus.INTERRUPTED
    assert machine_network_state() == before, "SIGTERM left namespaces, links or rules"
