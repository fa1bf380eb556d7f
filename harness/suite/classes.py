"""Which class of incident a scenario stands for, so a yearly incident count can be applied
to it: the first fault decides, a sequence of restarts is maintenance. A suite entry may state
its class instead (`fault_class:`) when the rule below is not what the user means."""

from __future__ import annotations

from harness.scenario.model import (
    ClockSkewFault,
    Fault,
    KillFault,
    PauseFault,
    RestartFault,
    RoleSelector,
    Scenario,
)
from harness.topology.model import Topology

LEADER_LOSS = "leader_loss"
FOLLOWER_LOSS = "follower_loss"
NODE_LOSS = "node_loss"
BROKER = "broker"
SERVICE_LOSS = "service_loss"
NETWORK = "network"
CLOCK = "clock"
MAINTENANCE = "maintenance"
NO_FAULT = "none"

# Selections that always include the leader when the role is a Raft group.
_SELECTS_LEADER = {"leader", "minority", "majority", "all"}
_SELECTS_FOLLOWER = {"follower", "random-follower"}


def _process_fault_class(fault: KillFault | PauseFault | RestartFault, topology: Topology) -> str:
    target = fault.target
    if isinstance(target, RoleSelector):
        if target.select in _SELECTS_LEADER:
            return LEADER_LOSS
        if target.select in _SELECTS_FOLLOWER:
            return FOLLOWER_LOSS
        role = target.role
    else:
        service = topology.services.get(target)
        role = service.role if service else ""
        if service is not None and service.raft:
            return NODE_LOSS  # which node leads is only known at run time
    return BROKER if role == "kafka" else SERVICE_LOSS


def fault_class_of(fault: Fault, topology: Topology) -> str:
    if isinstance(fault, KillFault | PauseFault | RestartFault):
        return _process_fault_class(fault, topology)
    if isinstance(fault, ClockSkewFault):
        return CLOCK
    return NETWORK  # partitions, packet loss and every Toxiproxy link fault


def scenario_fault_class(scenario: Scenario, topology: Topology) -> str:
    faults = scenario.faults
    if not faults:
        return NO_FAULT
    if len(faults) > 1 and all(isinstance(fault, RestartFault) for fault in faults):
        return MAINTENANCE  # a rolling restart: a deployment, planned
    return fault_class_of(faults[0], topology)
