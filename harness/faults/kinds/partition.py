"""partition: cut services off from each other (iptables DROP between the groups, tagged with
the run id, applied through the backend's NetworkControl): `isolate` one selection from the
rest of its role, or split into `groups` that only talk within themselves. The rules go on
heal."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from harness.faults.base import ActiveFault, FaultContext, network_control
from harness.faults.classes import network_class
from harness.faults.effects_netfilter import watch_counters
from harness.faults.kind import FaultKind
from harness.faults.kinds._targets import journal_kernel_rules, services
from harness.scenario.fault_fields import FaultBase, Target


class PartitionFault(FaultBase):
    type: Literal["partition"]
    isolate: Target | None = Field(default=None, description="cut these off from all peers")
    groups: list[Annotated[list[Target], Field(min_length=1, max_length=256)]] | None = Field(
        default=None,
        max_length=256,
        description="split into groups that can only talk within themselves",
    )

    def named_targets(self) -> list[tuple[tuple[str | int, ...], Target]]:
        named: list[tuple[tuple[str | int, ...], Target]] = []
        if self.isolate is not None:
            named.append((("isolate",), self.isolate))
        for g, group in enumerate(self.groups or []):
            named.extend((("groups", g, m), member) for m, member in enumerate(group))
        return named

    @model_validator(mode="after")
    def _one_shape(self) -> PartitionFault:
        if (self.isolate is None) == (self.groups is None):
            raise ValueError("give exactly one of 'isolate' or 'groups'")
        if self.groups is not None and len(self.groups) < 2:
            raise ValueError("groups needs at least two groups")
        return self


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
