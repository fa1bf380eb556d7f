"""packet_loss: drop a random share of the packets to and from one service's own address
(iptables statistic DROP, tagged with the run id); the rules go on heal."""

from __future__ import annotations

from harness.errors import BackendError
from harness.faults.base import ActiveFault, FaultContext
from harness.faults.classes import network_class
from harness.faults.effects_netfilter import watch_counters
from harness.faults.kind import FaultKind
from harness.faults.kinds._targets import services
from harness.scenario.model import PacketLossFault


def inject(fault: PacketLossFault, key: int, context: FaultContext) -> ActiveFault:
    from harness.faults.network import inject_packet_loss

    names = services(fault.target, context)
    if len(names) != 1:
        raise BackendError(f"packet_loss takes one service, the selector gave {names}")
    host = context.plan.services[names[0]].host
    return inject_packet_loss(context.run_id, key, names[0], host, fault.percent)


KIND = FaultKind(
    name="packet_loss",
    model=PacketLossFault,
    inject=inject,
    fault_class=network_class,
    needs_netfilter=True,
    watch_effect=watch_counters,
)
