"""Kernel faults on a `network: namespaces` topology: the Docker backend's rules inside each
service's namespace (harness/backends/docker/netns.py), entered by the namespace's name. They
match by the namespace's one address, so they act whatever source the program's sockets use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.backends.docker import netns
from harness.errors import BackendError
from harness.topology.network import NamespaceNetwork

if TYPE_CHECKING:
    from harness.faults.base import ActiveFault
    from harness.faults.netfilter import CountedRule

MECHANISM = "iptables DROP in each service's network namespace (network: namespaces)"


def namespace_of(network: NamespaceNetwork, name: str) -> netns.Namespace:
    node = network.nodes[name]
    return netns.Namespace(name, 0, node.address, node.file)


def drop_packets(
    network: NamespaceNetwork, run_id: str, key: str | int, name: str, percent: float
) -> ActiveFault:
    if not 0 < percent <= 100:
        raise BackendError(f"packet_loss percent must be in (0, 100], got {percent}")
    tag = netns.make_tag(run_id, key)
    peers = [namespace_of(network, peer) for peer in network.nodes if peer != name]
    rules = netns.random_loss_rules(tag, namespace_of(network, name), peers, percent / 100)
    return netns.inject([name], rules, tag, {"mechanism": MECHANISM, "percent": percent})


def partition(
    network: NamespaceNetwork, run_id: str, key: str | int, groups: list[list[str]]
) -> ActiveFault:
    groups = [group for group in groups if group]
    if len(groups) < 2:
        raise BackendError(f"a partition needs at least two non-empty groups, got {groups}")
    tag = netns.make_tag(run_id, key)
    spaces = [[namespace_of(network, name) for name in group] for group in groups]
    rules = netns.partition_rules(tag, spaces)
    targets = [name for group in groups for name in group]
    return netns.inject(targets, rules, tag, {"mechanism": MECHANISM, "groups": groups})


def rule_counters(network: NamespaceNetwork, tag: str) -> list[CountedRule]:
    spaces = [namespace_of(network, name) for name in network.nodes]
    return netns.counted_tagged(spaces, tag)
