"""The private network of a topology run with `network: namespaces` on the local backend: one
Linux bridge and, per service, a named network namespace joined to it by a veth pair, with an
address on a /24 of 10.231.0.0/16 that the run owns. Pure: names and addresses only; the
commands that make them are in harness/backends/local/namespaces.py.

Why a subnet of its own: kernel rules inside a service's namespace then match every packet
it sends or receives by the namespace's one address, whatever source the program's sockets
pick, which rules on a shared loopback cannot. Names carry a random token, so two runs never
collide and a heal removes exactly the names its journal recorded.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.errors import BackendError

HOST_NETWORK = "host"
NAMESPACES = "namespaces"
NETWORK_MODES = (HOST_NETWORK, NAMESPACES)
SUBNET_POOL = ipaddress.IPv4Network("10.231.0.0/16")
SUBNET_PREFIX = 24
# .1 is the bridge (the harness's side); services from .2: at most 253 of them.
MAX_SERVICES = 2 ** (32 - SUBNET_PREFIX) - 3
TOKEN_BYTES = 3  # 6 hex digits: `hfv<token><index>` must fit Linux's 15-character names


@dataclass(frozen=True)
class NamespaceNode:
    service: str
    namespace: str  # `ip netns` name: /run/netns/<namespace>
    host_veth: str  # the bridge's end of the pair
    inner_veth: str  # the end inside the namespace
    address: str

    @property
    def file(self) -> str:
        return f"/run/netns/{self.namespace}"


@dataclass(frozen=True)
class NamespaceNetwork:
    token: str
    subnet: str  # a.b.c.0/24
    bridge: str
    bridge_address: str
    nodes: dict[str, NamespaceNode]

    @property
    def prefix_length(self) -> int:
        return ipaddress.IPv4Network(self.subnet).prefixlen

    def address(self, service: str) -> str:
        return self.nodes[service].address


def new_token() -> str:
    return secrets.token_hex(TOKEN_BYTES)


def free_subnets(used: Iterable[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Network]:
    """The /24s of the pool that overlap no network already on this machine (an address of
    an interface or a route), so the run's traffic can never reach anything but its own."""
    taken = list(used)
    return [
        subnet
        for subnet in SUBNET_POOL.subnets(new_prefix=SUBNET_PREFIX)
        if not any(subnet.overlaps(other) for other in taken)
    ]


def plan_network(
    token: str, services: Sequence[str], subnet: ipaddress.IPv4Network
) -> NamespaceNetwork:
    """Names and addresses for `services`, in order, on `subnet`."""
    if len(services) > MAX_SERVICES:
        raise BackendError(
            f"network: namespaces gives each service an address on one /{SUBNET_PREFIX}: at "
            f"most {MAX_SERVICES} services, not {len(services)}"
        )
    hosts = list(subnet.hosts())
    nodes = {
        name: NamespaceNode(
            service=name,
            namespace=f"hftchaos-{token}-{index}",
            host_veth=f"hfv{token}{index}",
            inner_veth=f"hfp{token}{index}",
            address=str(hosts[index + 1]),
        )
        for index, name in enumerate(services)
    }
    return NamespaceNetwork(
        token=token,
        subnet=str(subnet),
        bridge=f"hfb{token}",
        bridge_address=str(hosts[0]),
        nodes=nodes,
    )
