"""Which class of incident a fault stands for, so a yearly incident count can be applied to
it (the suite's downtime projection). Each fault kind names its class; these are the names
and the rule the process faults share."""

from __future__ import annotations

from typing import Any

from harness.scenario.fault_fields import RoleSelector, Target
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


def process_fault_class(target: Target, topology: Topology) -> str:
    """Kill, pause and restart: a leader, a follower, a Raft node, a broker or a service."""
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


def network_class(_fault: Any, _topology: Topology) -> str:
    return NETWORK


def clock_class(_fault: Any, _topology: Topology) -> str:
    return CLOCK
