"""packet_loss: drop a random share of the packets to and from one service, in its own network
context through the backend's NetworkControl (iptables statistic DROP tagged with the run id:
on the host's loopback locally, inside the container's namespace on Docker); the rules go on
heal."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.errors import BackendError
from harness.faults.base import ActiveFault, FaultContext, network_control
from harness.faults.classes import network_class
from harness.faults.effects_netfilter import watch_counters
from harness.faults.kind import FaultKind
from harness.faults.kinds._targets import journal_kernel_rules, services
from harness.scenario.fault_fields import FaultBase, Target


class PacketLossFault(FaultBase):
    type: Literal["packet_loss"]
    target: Target
    percent: float = Field(gt=0, le=100)


def inject(fault: PacketLossFault, key: int, context: FaultContext) -> ActiveFault:
    network = network_control(context, "packet_loss")
    names = services(fault.target, context)
    if len(names) != 1:
        raise BackendError(f"packet_loss takes one service, the selector gave {names}")
    journal_kernel_rules(context, key, fault.type, names)
    return network.drop_packets(context.run_id, key, names[0], fault.percent)


KIND = FaultKind(
    name="packet_loss",
    model=PacketLossFault,
    inject=inject,
    fault_class=network_class,
    needs_netfilter=True,
    watch_effect=watch_counters,
)
