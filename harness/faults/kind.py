"""What a fault kind declares about itself, in one place: its scenario model, how to inject
it (the returned ActiveFault knows its heal), whether aiming it at the leader removes the
leader, what it needs from the machine and the topology, and its incident class for the
suite's projection. Each kind is one module in `harness/faults/kinds/` exposing `KIND`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from harness.faults.base import ActiveFault, FaultContext
from harness.faults.effects import EffectRequest, EffectWatch, no_effect_check
from harness.scenario.fault_fields import FaultBase
from harness.topology.model import Topology

FaultT = TypeVar("FaultT", bound=FaultBase)


def no_clock_control(_fault: Any, _topology: Topology) -> set[str]:
    return set()


@dataclass(frozen=True)
class FaultKind(Generic[FaultT]):
    name: str  # the scenario's `type:` value
    model: type[FaultT]
    inject: Callable[[FaultT, int, FaultContext], ActiveFault]
    fault_class: Callable[[FaultT, Topology], str]
    # Aimed at the leader, it takes the leader out (a failover is then expected of it).
    removes_leader: bool = False
    # Over when inject returns (its heal is recorded at once, not at the end of the run).
    completes_on_injection: bool = False
    # Planned work, not an incident: a scenario made only of it is maintenance for the suite.
    planned: bool = False
    needs_netfilter: bool = False  # kernel rules: root and iptables, checked before a run
    # Services that must start with clock control (libfaketime preloaded) for this fault.
    clock_controlled: Callable[[FaultT, Topology], set[str]] = field(default=no_clock_control)
    # Watches one application and says whether it did anything (harness/faults/effects.py);
    # without one, the kind's runs are unknown, never passed.
    watch_effect: Callable[[EffectRequest], EffectWatch] = field(default=no_effect_check)
