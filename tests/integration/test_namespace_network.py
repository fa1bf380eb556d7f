"""`network: namespaces` on the local backend makes kernel faults act on programs whose
connections do not come from their own address, and leaves nothing behind.

Two peers (programs/chatter.py) listen on every address and dial each other without binding a
source, as many real programs do. On loopback they dial 127.0.0.1:<port> (the usual shape of
such a program, and test_fault_effects.py's `unbound` peers), so no packet carries the
addresses kernel rules name: partition and packet loss are judged not effective. With
`network: namespaces` the same program runs in a namespace of its own (where 127.0.0.1 is its
own loopback, so it dials the peer's address, the only way to reach it there), the rules go
inside, and both faults drop packets; a connection across the partition really fails.
(Dialing the peer's address on loopback makes packet loss partly effective: the packets *to*
a node carry its address. Partition stays not effective; test_fault_effects.py shows that.)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends.local import LocalBackend
from harness.faults import netfilter
from harness.faults.stale import heal_unfinished
from tests.integration.test_fault_effects import PROGRAMS, _backend, apply_and_heal

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and kernel faults need root"),
]

PARTITION = {"type": "partition", "isolate": "a"}
PACKET_LOSS = {"type": "packet_loss", "target": "a", "percent": 50}


def _peer(name: str, host: str, other: str, namespaces: bool) -> str:
    peer = (
        f"${{services.{other}.address.tcp}}"
        if namespaces
        else f"127.0.0.1:${{services.{other}.port.tcp}}"
    )
    return f"""\
  {name}:
    role: peer
    host: {host}
    ports: [tcp, http]
    command: ["${{python}}", "{PROGRAMS / "chatter.py"}", --listen, "0.0.0.0:${{self.port.tcp}}",
              --http, "${{self.address.http}}", --peer, "{peer}",
              --lifetime-s, "300"]
    health: {{tcp: "${{self.address.tcp}}", timeout_s: 10}}
"""


def _topology(namespaces: bool) -> str:
    return (
        f"name: unbound{'ns' if namespaces else 'lo'}\n"
        + ("network: namespaces\n" if namespaces else "")
        + "services:\n"
        + _peer("a", "127.0.0.45", "b", namespaces)
        + _peer("b", "127.0.0.46", "a", namespaces)
    )


def machine_network_state() -> dict[str, list[str]]:
    """What a run could leave behind: namespaces, links and filter rules (without counters)."""

    def run(*command: str) -> list[str]:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.split(
            "\n"
        )

    links = [line.split(":")[1].strip().split("@")[0] for line in run("ip", "-o", "link") if line]
    rules = [line for line in run("iptables-save", "-t", "filter") if line.startswith("-A")]
    return {"namespaces": sorted(run("ip", "netns", "list")), "links": links, "rules": rules}


@pytest.fixture(scope="module")
def before() -> dict[str, list[str]]:
    return machine_network_state()


@pytest.fixture(scope="module")
def in_namespaces(
    before: dict[str, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalBackend]:
    yield from _backend(tmp_path_factory.mktemp("ns"), _topology(namespaces=True))


@pytest.fixture(scope="module")
def on_loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBackend]:
    yield from _backend(tmp_path_factory.mktemp("lo"), _topology(namespaces=False))


def _connects(backend: LocalBackend, source: str, target: str) -> bool:
    """Whether `source`'s namespace reaches `target`'s tcp port within half a second."""
    assert backend.plan.network is not None
    namespace = backend.plan.network.nodes[source].namespace
    address = backend.plan.services[target].address("tcp")
    probe = (
        "import socket,sys; h,p=sys.argv[1].rsplit(':',1); "
        "socket.create_connection((h,int(p)),timeout=0.5)"
    )
    command = ["ip", "netns", "exec", namespace, sys.executable, "-c", probe, address]
    return subprocess.run(command, capture_output=True, timeout=10, check=False).returncode == 0


def test_services_get_namespace_addresses_reached_from_the_host(
    in_namespaces: LocalBackend,
) -> None:
    network = in_namespaces.plan.network
    assert network is not None and network.subnet.startswith("10.231.")
    a = in_namespaces.plan.services["a"]
    assert a.host == network.address("a") != "127.0.0.45"
    assert network.address("b") in " ".join(a.command)  # the peer's placeholder
    with socket.create_connection((a.host, a.ports["http"]), timeout=2):
        pass  # the harness reaches the service over the bridge
    assert _connects(in_namespaces, "a", "b") and _connects(in_namespaces, "b", "a")


@pytest.mark.parametrize("fault", [PARTITION, PACKET_LOSS], ids=["partition", "packet_loss"])
def test_kernel_faults_in_namespaces_are_effective(
    in_namespaces: LocalBackend, fault: dict[str, Any]
) -> None:
    effect = apply_and_heal(in_namespaces, dict(fault))
    assert effect["status"] == "effective", effect
    assert effect["evidence"]["packets_dropped"] > 0


def test_a_partition_in_namespaces_really_stops_traffic(in_namespaces: LocalBackend) -> None:
    run_id = f"nsp{os.getpid()}"
    fault = in_namespaces.partition(run_id, 1, [["a"], ["b"]])
    try:
        assert not _connects(in_namespaces, "a", "b")
        assert not _connects(in_namespaces, "b", "a")
    finally:
        fault.heal()
        netfilter.sweep(run_id)
    assert _connects(in_namespaces, "a", "b")


@pytest.mark.parametrize("fault", [PARTITION, PACKET_LOSS], ids=["partition", "packet_loss"])
def test_the_same_faults_on_loopback_are_not_effective(
    on_loopback: LocalBackend, fault: dict[str, Any]
) -> None:
    effect = apply_and_heal(on_loopback, dict(fault))
    assert effect["status"] == "not_effective", effect
    assert effect["evidence"]["packets_dropped"] == 0


UP_AND_WAIT = """
import sys, time
from pathlib import Path
from harness.backends.local import LocalBackend
from harness.toolchain import locate_toolchain
from harness.topology.loader import load_topology
from harness.topology.plan import make_plan
plan = make_plan(load_topology(Path(sys.argv[1])), Path(sys.argv[2]), locate_toolchain())
backend = LocalBackend(plan)
backend.up()
print("up", flush=True)
time.sleep(300)
"""


def test_a_sigkilled_harness_s_network_is_removed_by_the_next_heal(tmp_path: Path) -> None:
    before = machine_network_state()
    (tmp_path / "topology.yaml").write_text(_topology(namespaces=True))
    harness = subprocess.Popen(
        [sys.executable, "-c", UP_AND_WAIT, str(tmp_path / "topology.yaml"), str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    try:
        assert harness.stdout is not None and harness.stdout.readline().strip() == "up"
        assert machine_network_state()["namespaces"] != before["namespaces"]
    finally:
        harness.send_signal(signal.SIGKILL)
        harness.wait()
    time.sleep(0.5)  # the services die with it (parent-death signal)
    outcomes = heal_unfinished("the test")
    assert any("network hfb" in done for o in outcomes for done in o.undone), outcomes
    assert all(o.healed for o in outcomes), outcomes
    assert machine_network_state() == before


def test_nothing_is_left_behind(
    before: dict[str, list[str]], in_namespaces: LocalBackend, on_loopback: LocalBackend
) -> None:
    """Last: the module's topologies are torn down first, by hand, then compared."""
    in_namespaces.teardown()
    on_loopback.teardown()
    assert machine_network_state() == before
