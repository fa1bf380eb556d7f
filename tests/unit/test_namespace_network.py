"""The pure parts of `network: namespaces`: subnet choice, names and addresses, the commands
that make the network, and how the journal records and forgets it."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from harness.backends.docker.netns import entering
from harness.backends.local.namespace_faults import namespace_of
from harness.backends.local.namespaces import exec_prefix, setup_commands, used_networks
from harness.errors import BackendError, TopologyError
from harness.faults.journal import FaultJournal, RemoveNetwork, read_journal
from harness.topology.loader import load_topology
from harness.topology.network import MAX_SERVICES, free_subnets, plan_network

SUBNET = ipaddress.IPv4Network("10.231.7.0/24")


def test_free_subnets_skip_every_network_in_use() -> None:
    used = [ipaddress.IPv4Network("10.231.0.0/23"), ipaddress.IPv4Network("10.231.5.9/32")]
    free = free_subnets(used)
    assert ipaddress.IPv4Network("10.231.0.0/24") not in free
    assert ipaddress.IPv4Network("10.231.1.0/24") not in free
    assert ipaddress.IPv4Network("10.231.5.0/24") not in free
    assert ipaddress.IPv4Network("10.231.2.0/24") in free and len(free) == 256 - 3
    assert free_subnets([ipaddress.IPv4Network("10.0.0.0/8")]) == []


def test_used_networks_reads_addresses_and_routes() -> None:
    addresses = json.dumps(
        [{"addr_info": [{"local": "127.0.0.1", "prefixlen": 8}]}, {"addr_info": []}]
    )
    routes = json.dumps([{"dst": "default"}, {"dst": "10.231.3.0/24"}, {"dst": "192.0.2.7"}])
    assert [str(n) for n in used_networks(addresses, routes)] == [
        "127.0.0.0/8",
        "10.231.3.0/24",
        "192.0.2.7/32",
    ]


def test_each_service_gets_names_of_the_run_and_an_address_after_the_bridge() -> None:
    network = plan_network("abc123", ["a", "b"], SUBNET)
    assert network.bridge == "hfbabc123" and network.bridge_address == "10.231.7.1"
    assert [node.address for node in network.nodes.values()] == ["10.231.7.2", "10.231.7.3"]
    b = network.nodes["b"]
    assert (b.namespace, b.host_veth, b.inner_veth) == (
        "hftchaos-abc123-1",
        "hfvabc1231",
        "hfpabc1231",
    )
    longest = plan_network("abc123", [f"s{i}" for i in range(MAX_SERVICES)], SUBNET)
    assert all(len(node.host_veth) <= 15 for node in longest.nodes.values())  # Linux's limit
    assert list(longest.nodes.values())[-1].address == "10.231.7.254"
    with pytest.raises(BackendError, match="at most 253"):
        plan_network("abc123", [f"s{i}" for i in range(MAX_SERVICES + 1)], SUBNET)


def test_setup_commands_make_the_bridge_then_each_namespace() -> None:
    network = plan_network("abc123", ["a"], SUBNET)
    commands = [" ".join(command) for command in setup_commands(network)]
    assert commands == [
        "ip link add hfbabc123 type bridge",
        "ip addr add 10.231.7.1/24 dev hfbabc123",
        "ip link set hfbabc123 up",
        "ip netns add hftchaos-abc123-0",
        "ip link add hfvabc1230 type veth peer name hfpabc1230 netns hftchaos-abc123-0",
        "ip link set hfvabc1230 master hfbabc123 up",
        "ip -n hftchaos-abc123-0 addr add 10.231.7.2/24 dev hfpabc1230",
        "ip -n hftchaos-abc123-0 link set hfpabc1230 up",
        "ip -n hftchaos-abc123-0 link set lo up",
    ]


def test_services_run_and_rules_are_entered_by_the_namespace_name() -> None:
    network = plan_network("abc123", ["a"], SUBNET)
    assert exec_prefix(network.nodes["a"]) == ["ip", "netns", "exec", "hftchaos-abc123-0"]
    namespace = namespace_of(network, "a")
    assert namespace.address == "10.231.7.2"
    assert entering(namespace) == ["nsenter", "--net=/run/netns/hftchaos-abc123-0"]


def test_the_journal_forgets_a_network_once_it_is_removed(tmp_path: Path) -> None:
    journal = FaultJournal.start(tmp_path, "run1")
    step = RemoveNetwork(
        run_id="run1", key="network", bridge="hfbx", namespaces=["n0"], veths=["v0"]
    )
    journal.network(step)
    assert read_journal(journal.path).networks == {"hfbx": step}
    journal.network_removed("hfbx")
    assert read_journal(journal.path).networks == {}


def test_namespaces_on_another_backend_is_a_located_error(tmp_path: Path) -> None:
    file = tmp_path / "topology.yaml"
    file.write_text(
        'name: t\nbackend: docker\nnetwork: namespaces\nservices:\n  a: {command: ["true"]}\n'
    )
    with pytest.raises(TopologyError, match=rf"{file}:3.*network: only the local backend"):
        load_topology(file)
    file.write_text('name: t\nnetwork: bridges\nservices:\n  a: {command: ["true"]}\n')
    with pytest.raises(TopologyError, match=rf"{file}:2.*network"):
        load_topology(file)


def test_a_link_gone_between_the_check_and_the_delete_is_not_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel removes a deleted namespace's veth peer in its own time: seen in CI, the
    peer was listed, then gone when `ip link delete` ran, and the heal reported a failure."""
    from harness.backends.local import namespaces

    link = tmp_path / "hfv0"
    link.write_text("")

    def vanishes(command: list[str]) -> str:
        link.unlink()
        raise BackendError('Cannot find device "hfv0"')

    monkeypatch.setattr(namespaces, "_ip", vanishes)
    assert namespaces._delete(["ip", "link", "delete", "hfv0"], link) == []

    link.write_text("")

    def refuses(command: list[str]) -> str:
        raise BackendError("Operation not permitted")

    monkeypatch.setattr(namespaces, "_ip", refuses)
    assert namespaces._delete(["ip", "link", "delete", "hfv0"], link) == ["Operation not permitted"]
