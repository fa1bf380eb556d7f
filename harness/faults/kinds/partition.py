"""partition: cut services off from each other (iptables DROP between the groups, tagged with
the run id, applied through the backend's NetworkControl): `isolate` one selection from the
rest of its role, or split into `groups` that only talk within themselves. The rules go on
heal."""

from __future__ import annotations

from harness.faults.base import ActiveFault, FaultContext, network_control
from harness.faults.classes import network_class
from harness.faults.effects_netfilter import watch_counters
from harness.faults.kind import FaultKind
from harness.faults.kinds._targets import journal_kernel_rules, services
from harness.scenario.model import PartitionFault


def partition_groups(fault: PartitionFault, context: FaultContext) -> list[list[str]]:
    """Resolve groups in order; a service already placed is skipped later, so
    `[[minority], [all]]` splits the cluster into a minority and the rest."""
    if fault.isolate is not None:
        isolated = services(fault.isolate, context)
        role = context.plan.services[isolated[0]].role
        rest = [s.name for s in context.plan.with_role(role) if s.name not in isolated]
        return [isolated, sorted(rest)]
    placed: set[str] = set()
    groups: list[list[str]] = []
    for group in fault.groups or []:
        members: list[str] = []
        for target in group:
            for name in services(target, context):
                if name not in placed:
                    placed.add(name)
                    members.append(name)
        groups.append(members)
    return groups


def inject(fault: PartitionFault, key: int, context: FaultContext) -> ActiveFault:
    network = network_control(context, "partition")
    groups = partition_groups(fault, context)
    journal_kernel_rules(context, key, fault.type, [name for group in groups for name in group])
    return network.partition(context.run_id, key, groups)


KIND = FaultKind(
    name="partition",
    model=PartitionFault,
    inject=inject,
    fault_class=network_class,
    removes_leader=True,
    needs_netfilter=True,
    watch_effect=watch_counters,
)
