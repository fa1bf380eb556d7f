"""Which class of incident a scenario stands for, so a yearly incident count can be applied
to it: the first fault decides, a sequence of restarts is maintenance. A suite entry may state
its class instead (`fault_class:`) when the rule below is not what the user means."""

from __future__ import annotations

from harness.faults.classes import (
    BROKER,
    CLOCK,
    FOLLOWER_LOSS,
    LEADER_LOSS,
    MAINTENANCE,
    NETWORK,
    NO_FAULT,
    NODE_LOSS,
    SERVICE_LOSS,
)
from harness.faults.registry import kind_of
from harness.scenario.model import Fault, Scenario
from harness.topology.model import Topology

__all__ = [
    "BROKER",
    "CLOCK",
    "FOLLOWER_LOSS",
    "LEADER_LOSS",
    "MAINTENANCE",
    "NETWORK",
    "NODE_LOSS",
    "NO_FAULT",
    "SERVICE_LOSS",
    "fault_class_of",
    "scenario_fault_class",
]


def fault_class_of(fault: Fault, topology: Topology) -> str:
    return kind_of(fault).fault_class(fault, topology)


def scenario_fault_class(scenario: Scenario, topology: Topology) -> str:
    faults = scenario.faults
    if not faults:
        return NO_FAULT
    if len(faults) > 1 and all(kind_of(fault).planned for fault in faults):
        return MAINTENANCE  # a rolling restart: a deployment, planned
    return fault_class_of(faults[0], topology)
