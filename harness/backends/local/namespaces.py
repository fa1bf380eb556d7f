"""Make and remove a run's namespace network (harness/topology/network.py) with `ip`.

Creation is a list of commands built up front (pure, tested), run in order; removal acts on
names alone, each step tolerant of what is already gone, so the same code heals a run whose
harness was SIGKILLed half-way through creating it. Deleting a namespace takes its veth end,
the peer on the bridge and every kernel rule inside it along.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path

from harness.backends.local.subnet_reservations import reserve
from harness.errors import BackendError, RuntimeEnvironmentError
from harness.faults.netfilter import run_command
from harness.topology.network import (
    NamespaceNetwork,
    NamespaceNode,
    new_token,
    plan_network,
)

NETNS_DIR = Path("/run/netns")


def exec_prefix(node: NamespaceNode) -> list[str]:
    """What a service's command is run behind: `ip netns exec` enters the namespace and then
    execs the command, so the pid is the service's own."""
    return ["ip", "netns", "exec", node.namespace]


def setup_commands(network: NamespaceNetwork) -> list[list[str]]:
    """Every command that makes the network, in order."""
    length = network.prefix_length
    commands = [
        ["ip", "link", "add", network.bridge, "type", "bridge"],
        ["ip", "addr", "add", f"{network.bridge_address}/{length}", "dev", network.bridge],
        ["ip", "link", "set", network.bridge, "up"],
    ]
    for node in network.nodes.values():
        inside = ["ip", "-n", node.namespace]
        commands += [
            ["ip", "netns", "add", node.namespace],
            [*_veth_pair(node), "netns", node.namespace],
            ["ip", "link", "set", node.host_veth, "master", network.bridge, "up"],
            [*inside, "addr", "add", f"{node.address}/{length}", "dev", node.inner_veth],
            [*inside, "link", "set", node.inner_veth, "up"],
            [*inside, "link", "set", "lo", "up"],
        ]
    return commands


def _veth_pair(node: NamespaceNode) -> list[str]:
    return ["ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", node.inner_veth]


def used_networks(addresses: str, routes: str) -> list[ipaddress.IPv4Network]:
    """Pure: the IPv4 networks in `ip -j -4 addr` and `ip -j -4 route show table all`."""
    found = []
    for interface in json.loads(addresses or "[]"):
        for info in interface.get("addr_info", []):
            found.append(f"{info['local']}/{info.get('prefixlen', 32)}")
    for route in json.loads(routes or "[]"):
        destination = route.get("dst", "default")
        if destination != "default":
            found.append(destination)
    networks = []
    for text in found:
        try:
            networks.append(ipaddress.IPv4Network(text, strict=False))
        except ValueError:
            continue  # a multicast or other odd entry: nothing we could clash with
    return networks


def _machine_networks() -> list[ipaddress.IPv4Network]:
    addresses = _ip(["ip", "-j", "-4", "addr"])
    routes = _ip(["ip", "-j", "-4", "route", "show", "table", "all"])
    return used_networks(addresses, routes)


def allocate(services: Sequence[str]) -> NamespaceNetwork:
    """Names and a /24 that no interface or route of this machine uses and no other run has
    reserved (harness/backends/local/subnet_reservations.py); `create` checks the machine
    again, for a network made since by something other than this harness."""
    return plan_network(new_token(), services, reserve(_machine_networks()))


def create(network: NamespaceNetwork) -> None:
    """Run the setup commands; the caller has journaled the names, and removes on failure."""
    subnet = ipaddress.IPv4Network(network.subnet)
    if any(subnet.overlaps(other) for other in _machine_networks()):
        raise BackendError(f"network: namespaces: {subnet} came into use since it was chosen")
    for command in setup_commands(network):
        _ip(command)


def remove(bridge: str, namespaces: Sequence[str], veths: Sequence[str]) -> list[str]:
    """Delete what of these still exists; returns what could not be deleted."""
    failures = []
    for namespace in namespaces:
        failures += _delete(["ip", "netns", "delete", namespace], NETNS_DIR / namespace)
    for link in [*veths, bridge]:
        failures += _delete(["ip", "link", "delete", link], Path("/sys/class/net", link))
    return failures


def _delete(command: list[str], exists: Path) -> list[str]:
    """Run `command` if `exists` is there; a failure counts only while it is still there.

    Deleting a namespace destroys its veth end, and with it the peer on the host, in the
    kernel's own time: a peer seen a moment ago may be gone when `ip link delete` runs (seen in
    CI as `Cannot find device "hfv33b61c0"`), which is the outcome wanted, not a failure."""
    if not exists.exists():
        return []
    try:
        _ip(command)
    except (BackendError, RuntimeEnvironmentError) as error:
        return [str(error)] if exists.exists() else []
    return []


def _ip(command: list[str]) -> str:
    return run_command(command).stdout
